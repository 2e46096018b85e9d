from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback.models import Sample
from recognizer.preprocessing import drawing_png
from recognizer.services import digit_predict


def sample_create(*, image: bytes, label: int) -> Sample:
    """Store a drawing with its true label. The guess, its confidence and the model version are
    worked out here, by the server, not taken from the client."""
    if not 0 <= label <= 9:
        raise ValidationError({"label": "label must be a digit from 0 to 9"})
    prediction = digit_predict(image=image)  # also rejects anything that is not an image
    if prediction.digit is None:
        raise ValidationError({"image": "the drawing has no ink: draw a digit first"})
    sample = Sample(
        drawing=drawing_png(image),  # what the drawing is, never the client's bytes
        model_input=prediction.model_input.tobytes(),
        label=label,
        guess=prediction.digit,
        confidence=prediction.confidence,
        model_version=prediction.model,
    )
    sample.full_clean()
    sample.save()
    return sample


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
