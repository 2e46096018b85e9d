import csv
import io
import json
import zipfile
from collections.abc import Iterator

from django.db.models import Count, QuerySet

from feedback.models import Sample
from recognizer.labels import label_text
from recognizer.preprocessing import to_png

# A fixed share of samples, chosen by id, is held out from training: it judges how well a new
# model reads drawings like the users' own. Chosen by a hash of the id, so it is the same share
# in every run; HOLDOUT_SHARE is the default (training's --holdout).
HOLDOUT_SHARE = 0.2
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
