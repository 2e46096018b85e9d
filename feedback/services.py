from collections.abc import Iterable

import numpy as np

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback.models import Sample
from recognizer.preprocessing import Strokes, drawing_png, strokes_to_drawing, to_png
from recognizer.services import digit_predict

NOTHING_TO_LEARN = {
    "no_ink": "the drawing has no ink: draw a digit first",
    "too_small": "the drawing is too small to read: draw the digit bigger",
}


def sample_create(*, label: int, image: bytes | None = None, strokes: Strokes | None = None) -> Sample:
    """Store a drawing (strokes or an image) with its true label. The guess, its confidence and
    the model version are worked out here, by the server, not taken from the client. A guess
    the model was not sure of is stored all the same: those teach it the most."""
    if not 0 <= label <= 9:
        raise ValidationError({"label": "label must be a digit from 0 to 9"})
    prediction = digit_predict(image=image, strokes=strokes)  # also rejects anything that is not an image
    if prediction.digit is None:
        field = "strokes" if strokes is not None else "image"
        raise ValidationError({field: NOTHING_TO_LEARN[prediction.reason]})
    if strokes is not None:
        drawing = to_png(strokes_to_drawing(strokes))
    else:
        drawing = drawing_png(image)  # what the drawing is, never the client's bytes
    sample = Sample(
        drawing=drawing,
        strokes=None if strokes is None else [np.asarray(stroke).tolist() for stroke in strokes],
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
