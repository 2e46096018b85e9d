"""Reads for training runs, and for how the site's users answered each model version's guesses."""

from dataclasses import dataclass
from datetime import datetime
from statistics import median

from django.db.models import Count, Max, Min, Q

from feedback.models import Sample
from recognizer.labels import CLASSES
from recognizer.services import SURE_THRESHOLD
from training.models import TrainingRun


def samples_learnt_by(*, version: str) -> set[int]:
    """Ids of the users' drawings the model `version` has learnt: those its run trained on (which
    include its base model's), unless reviewed since (a relabelled drawing must be learnt again)."""
    run = TrainingRun.objects.filter(model_version=version).exclude(model_version="").first()
    if run is None:
        return set()
    unchanged = Q(reviewed_at__isnull=True) | Q(reviewed_at__lte=run.started_at)
    return set(run.samples.filter(unchanged).values_list("pk", flat=True))


def training_run_typical_seconds(*, from_scratch: bool, epochs: int, last: int = 5) -> float | None:
    """How long the last few finished runs of this kind took (the median), or None when there were none."""
    finished = (
        TrainingRun.objects.filter(status__in=[TrainingRun.Status.PROMOTED, TrainingRun.Status.CANDIDATE], from_scratch=from_scratch, epochs=epochs)
        .exclude(seconds=None)
        .order_by("-finished_at")
        .values_list("seconds", flat=True)[:last]
    )
    return median(finished) if finished else None


@dataclass(frozen=True)
class VersionQuality:
    """How the users answered one model version's guesses: each answer is a confirmed guess (the
    label is the guess) or a correction. Classes are recognizer.labels' (digits, then not a digit)."""

    version: str
    first_at: datetime  # its first and last answered guess
    last_at: datetime
    not_sure: int  # answered guesses it made below recognizer.services.SURE_THRESHOLD
    # counts[label][guess] of every answer: the diagonal confirmed, the rest corrected
    counts: tuple[tuple[int, ...], ...]

    @property
    def answered(self) -> int:
        return sum(map(sum, self.counts))

    @property
    def confirmed(self) -> int:
        return sum(self.counts[c][c] for c in range(CLASSES))

    @property
    def corrected(self) -> int:
        return self.answered - self.confirmed

    def by_guess(self) -> list[tuple[int, int, int]]:
        """(class, confirmed, corrected) for each class it guessed."""
        return [(c, self.counts[c][c], sum(self.counts[label][c] for label in range(CLASSES)) - self.counts[c][c]) for c in range(CLASSES)]

    def corrections(self) -> list[list[int]]:
        """The corrections' confusion matrix (rows: what the user said, columns: the guess)."""
        return [[0 if label == guess else n for guess, n in enumerate(row)] for label, row in enumerate(self.counts)]


def model_versions_quality() -> list[VersionQuality]:
    """Every model version that guessed a drawing someone answered, in the order they first
    served. Rejected samples are left out: a reviewer judged their answers untrue."""
    rows = (
        Sample.objects.exclude(status=Sample.Status.REJECTED)
        .values("model_version", "label", "guess")
        .annotate(count=Count("id"), not_sure=Count("id", filter=Q(confidence__lt=SURE_THRESHOLD)), first=Min("created_at"), last=Max("created_at"))
    )
    found: dict[str, dict] = {}
    for row in rows:
        v = found.setdefault(row["model_version"], {"counts": [[0] * CLASSES for _ in range(CLASSES)], "not_sure": 0, "first": row["first"], "last": row["last"]})
        v["counts"][row["label"]][row["guess"]] += row["count"]
        v["not_sure"] += row["not_sure"]
        v["first"], v["last"] = min(v["first"], row["first"]), max(v["last"], row["last"])
    qualities = [
        VersionQuality(version=version, first_at=v["first"], last_at=v["last"], not_sure=v["not_sure"], counts=tuple(map(tuple, v["counts"])))
        for version, v in found.items()
    ]
    return sorted(qualities, key=lambda q: (q.first_at, q.version))


def model_version_before(*, version: str, served: list[str]) -> str | None:
    """The version to compare `version` with: the one its run fine-tuned, when that one was
    answered too, else the one that first served before it (`served`: versions in serving order)."""
    run = TrainingRun.objects.filter(model_version=version).exclude(base_version="").first()
    if run and run.base_version in served and run.base_version != version:
        return run.base_version
    place = served.index(version) if version in served else 0
    return served[place - 1] if place > 0 else None
