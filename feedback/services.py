from collections.abc import Iterable
from datetime import timedelta
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from feedback.models import Sample
from recognizer.preprocessing import Strokes, drawing_png, drawing_to_png, strokes_compact, strokes_to_drawing
from recognizer.services import digit_predict

NOTHING_TO_LEARN = {
    "no_ink": "the drawing has no ink: draw a digit first",
    "too_small": "the drawing is too small to read: draw the digit bigger",
}


def sample_create(
    *, label: int, image: bytes | None = None, strokes: Strokes | None = None, client_id: UUID | None = None
) -> Sample:
    """Store a drawing (strokes or an image) with its true label. The guess, its confidence and
    the model version are worked out here, by the server, not taken from the client. A guess
    the model was not sure of is stored all the same: those teach it the most."""
    sample = _sample_build(label=label, image=image, strokes=strokes, client_id=client_id)
    sample.save()
    return sample


def _sample_build(*, label: int, image: bytes | None, strokes: Strokes | None, client_id: UUID | None) -> Sample:
    """The sample to store, checked but not saved: reading and guessing the drawing takes a
    millisecond or two, which must not happen while a transaction holds the database's write lock."""
    if not 0 <= label <= 9:
        raise ValidationError({"label": "label must be a digit from 0 to 9"})
    prediction = digit_predict(image=image, strokes=strokes)  # also rejects anything that is not an image
    if prediction.digit is None:
        field = "strokes" if strokes is not None else "image"
        raise ValidationError({field: NOTHING_TO_LEARN[prediction.reason]})
    if strokes is not None:
        drawing = drawing_to_png(strokes_to_drawing(strokes))
    else:
        drawing = drawing_png(image)  # what the drawing is, never the client's bytes
    sample = Sample(
        drawing=drawing,
        strokes=None if strokes is None else strokes_compact(strokes),
        model_input=prediction.model_input.tobytes(),
        label=label,
        guess=prediction.digit,
        confidence=prediction.confidence,
        model_version=prediction.model,
        client_id=client_id,
    )
    sample.full_clean(validate_unique=False)  # client_id's uniqueness is the database's to keep
    return sample


def sample_create_once(
    *, client_id: UUID | None, label: int, image: bytes | None = None, strokes: Strokes | None = None
) -> tuple[Sample, bool]:
    """Store a correction once however often it is sent: a client that did not hear the answer
    sends it again with the same client_id, and gets the sample stored the first time.
    Returns (sample, created). Without a client_id every call stores a new sample."""
    if client_id is not None:
        existing = Sample.objects.filter(client_id=client_id).first()
        if existing is not None:
            return existing, False
    sample = _sample_build(label=label, image=image, strokes=strokes, client_id=client_id)
    try:
        with transaction.atomic():  # a savepoint: a duplicate leaves any outer transaction usable
            sample.save()
        return sample, True
    except IntegrityError:
        if client_id is None:
            raise
        # The same correction arrived twice at once, and the other request stored it first.
        return Sample.objects.get(client_id=client_id), False


@transaction.atomic
def sample_review(*, samples: Iterable[Sample], status: str) -> int:
    """Approve or reject samples (or set them back to new). Returns how many changed."""
    if status not in Sample.Status.values:
        raise ValidationError({"status": f"status must be one of {', '.join(Sample.Status.values)}"})
    ids = [sample.pk for sample in samples]
    reviewed_at = None if status == Sample.Status.NEW else timezone.now()
    return Sample.objects.filter(pk__in=ids).exclude(status=status).update(status=status, reviewed_at=reviewed_at)


@transaction.atomic
def sample_relabel(*, samples: Iterable[Sample], label: int) -> int:
    """Correct the label of samples; a relabelled sample counts as reviewed and approved."""
    if not 0 <= label <= 9:
        raise ValidationError({"label": "label must be a digit from 0 to 9"})
    ids = [sample.pk for sample in samples]
    return Sample.objects.filter(pk__in=ids).update(
        label=label, status=Sample.Status.APPROVED, reviewed_at=timezone.now()
    )


PRUNE_REJECTED_DAYS = 30
PRUNE_UNREVIEWED_DAYS = 180


def samples_prune(*, rejected_days: int, unreviewed_days: int, dry_run: bool) -> dict[str, int]:
    """Delete rejected samples older than `rejected_days` and unreviewed ones (every status but
    approved and rejected: new, and any other a later version adds) older than
    `unreviewed_days`. Approved samples are never deleted. Returns how many, by status; with
    `dry_run` only counts.

    A sample a training run used is deleted all the same: the run's record keeps its counts and
    report, and only its link to that sample goes. Samples still unreviewed or rejected after
    this long are not what training should lean on, and keeping them for a run's sake would let
    the table grow without end."""
    if rejected_days < 0 or unreviewed_days < 0:
        raise ValidationError("days must be 0 or more")
    now = timezone.now()
    unreviewed = [s for s in Sample.Status.values if s not in (Sample.Status.APPROVED, Sample.Status.REJECTED)]
    stale = Sample.objects.filter(
        Q(status=Sample.Status.REJECTED, created_at__lt=now - timedelta(days=rejected_days))
        | Q(status__in=unreviewed, created_at__lt=now - timedelta(days=unreviewed_days))
    )
    counts = {row["status"]: row["n"] for row in stale.order_by().values("status").annotate(n=Count("id"))}
    if not dry_run and counts:
        with transaction.atomic():
            stale.delete()
    return counts
