import csv
import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.db.models import Count, F, QuerySet

from feedback.models import Sample
from recognizer.labels import label_text
from recognizer.preprocessing import to_png
from recognizer.services import SURE_THRESHOLD

# A share of samples, chosen by id, may be held out by whoever judges with them (training's
# `holdout` option): chosen by a hash of the id, so it is the same share every time it is asked for.
_HASH = 2654435761  # Knuth's multiplicative hash


def sample_is_held_out(*, sample_id: int, holdout_share: float) -> bool:
    return (sample_id * _HASH) % 2**32 < holdout_share * 2**32


def samples_for_training(*, approved_only: bool = False) -> QuerySet[Sample]:
    """Samples a training run may use, by id (each with its `source`): approved ones, and new
    ones unless `approved_only`. Rejected samples and a burst's, waiting as needs_review, never."""
    samples = Sample.objects.exclude(status__in=[Sample.Status.REJECTED, Sample.Status.NEEDS_REVIEW])
    if approved_only:
        samples = samples.filter(status=Sample.Status.APPROVED)
    return samples.order_by("id")


def samples_from_source(*, source: str) -> QuerySet[Sample]:
    """Every sample one source sent, newest first; none for the unknown source ""."""
    if not source:
        return Sample.objects.none()
    return Sample.objects.filter(source=source).order_by("-created_at", "-id")


def sources_busiest(*, limit: int = 10) -> list[tuple[str, int]]:
    """The sources with the most samples, as (source, count), most first; unknown left out."""
    rows = (
        Sample.objects.exclude(source="")
        .values("source")
        .annotate(count=Count("id"))
        .order_by("-count", "source")[:limit]
    )
    return [(row["source"], row["count"]) for row in rows]


UNREVIEWED = (Sample.Status.NEW, Sample.Status.NEEDS_REVIEW)


@dataclass(frozen=True)
class ReviewGroup:
    """Unreviewed corrections of one guess -> label pair from one source, in the order to review them."""

    guess: int
    label: int
    source: str
    sample_ids: tuple[int, ...]  # the sure ones first, then oldest first
    held: int  # held as part of a burst (needs_review)
    sure: int  # corrections of a guess the model was sure of
    pair_sources: int  # sources with unreviewed corrections of this pair, this one included
    pair_count: int  # unreviewed corrections of this pair, from every source

    @property
    def suspicion(self) -> tuple:
        # A burst the services already held; then what a poisoner must do and an honest writer
        # rarely does: correct guesses the model was sure of, many alike from one sender, the
        # same pair sent by many (a script that changes its source). Honest corrections are
        # mostly of guesses the model was unsure of, a few at a time.
        return (self.held > 0, self.sure, len(self.sample_ids), self.pair_count)


def review_queue() -> list[ReviewGroup]:
    """The corrections waiting for review (new or needs_review, label other than the guess),
    grouped by guess -> label pair and source, the most suspicious group first; ties go to the
    group that waited longest. Reads ids and a few numbers only, never a drawing."""
    rows = (
        Sample.objects.filter(status__in=UNREVIEWED)
        .exclude(label=F("guess"))
        .order_by("id")
        .values_list("id", "guess", "label", "source", "confidence", "status")
    )
    groups: dict[tuple[int, int, str], list[tuple]] = {}
    for row in rows.iterator(chunk_size=2000):
        groups.setdefault((row[1], row[2], row[3]), []).append(row)
    pair_count, pair_sources = Counter(), Counter()
    for (guess, label, _), members in groups.items():
        pair_count[guess, label] += len(members)
        pair_sources[guess, label] += 1
    queue = []
    for (guess, label, source), members in groups.items():
        # The sure ones first, the surest first: if the group is an attack they show it at once.
        members.sort(key=lambda row: (row[4] < SURE_THRESHOLD, -row[4], row[0]))
        queue.append(
            ReviewGroup(
                guess=guess,
                label=label,
                source=source,
                sample_ids=tuple(row[0] for row in members),
                held=sum(row[5] == Sample.Status.NEEDS_REVIEW for row in members),
                sure=sum(row[4] >= SURE_THRESHOLD for row in members),
                pair_sources=pair_sources[guess, label],
                pair_count=pair_count[guess, label],
            )
        )
    queue.sort(key=lambda group: min(group.sample_ids))
    queue.sort(key=lambda group: group.suspicion, reverse=True)  # stable: the oldest first among equals
    return queue


def samples_for_review(*, ids: Sequence[int]) -> list[Sample]:
    """These samples, in the order asked, for the review queue to show; ids not found are left out."""
    found = Sample.objects.in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]


EXPORT_COLUMNS = [
    "id", "label", "guess", "is_correction", "status", "source", "model_version", "confidence", "created_at", "input_png", "drawing_png", "strokes",
    "label_text", "guess_text", "first_label",
]  # fmt: skip


class _Chunks:
    """A write-only file that hands over what was written: zipfile writes into it, and the
    export yields each piece at once, so no archive is ever held whole in memory."""

    def __init__(self):
        self._chunks: list[bytes] = []

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def sample_export_zip(*, samples: QuerySet[Sample]) -> Iterator[bytes]:
    """The samples as a dataset, streamed as a zip archive piece by piece:

    - `samples.csv`: id, label, guess, is_correction, status, source, model_version, confidence,
      created_at, the two image files' names, the strokes as JSON (empty for an image), the
      label and guess in words ("7", "not a digit": label 10), and the label first sent when
      the sender changed its answer (else empty);
    - `inputs/<id>.png`: the 28x28 input, ink white on black like MNIST, drawn from the strokes
      with today's preprocessing, as training reads it;
    - `drawings/<id>.png`: the drawing as its author saw it.

    The samples are read from the database in batches, twice (the table, then the images)."""
    ids = samples.order_by("id").values_list("id", flat=True)
    out = _Chunks()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("samples.csv", "w", force_zip64=True) as raw:
            table = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            writer = csv.writer(table)
            writer.writerow(EXPORT_COLUMNS)
            rows = Sample.objects.filter(id__in=ids).order_by("id").defer("drawing", "model_input")
            for sample in rows.iterator(chunk_size=500):
                writer.writerow([
                    sample.pk, sample.label, sample.guess, int(sample.is_correction), sample.status, sample.source,
                    sample.model_version, f"{sample.confidence:.6f}", sample.created_at.isoformat(),
                    f"inputs/{sample.pk}.png", f"drawings/{sample.pk}.png",
                    json.dumps(sample.strokes, separators=(",", ":")) if sample.strokes else "",
                    label_text(sample.label), label_text(sample.guess), "" if sample.first_label is None else sample.first_label,
                ])  # fmt: skip
                table.flush()
                if chunk := out.take():
                    yield chunk
            table.flush()
            table.detach()  # the archive closes the entry itself
        for sample in Sample.objects.filter(id__in=ids).order_by("id").iterator(chunk_size=200):
            archive.writestr(f"inputs/{sample.pk}.png", to_png(sample.input_array()))
            archive.writestr(f"drawings/{sample.pk}.png", bytes(sample.drawing))
            if chunk := out.take():
                yield chunk
    if chunk := out.take():
        yield chunk
