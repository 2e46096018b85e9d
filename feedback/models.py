import numpy as np
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from recognizer.labels import NOT_A_DIGIT, label_text
from recognizer.preprocessing import strokes_to_input

LABEL = [MinValueValidator(0), MaxValueValidator(NOT_A_DIGIT)]  # a digit, or NOT_A_DIGIT


class Sample(models.Model):
    """A drawing with the digit its author says it is, and what the model made of it.

    Everything is kept in the database, the drawing too, so samples travel with it (backups,
    several web machines sharing one database) and training needs nothing else.
    """

    class Status(models.TextChoices):
        NEW = "new", "new"
        # Part of a burst (feedback.services): kept out of training until a reviewer approves it.
        NEEDS_REVIEW = "needs_review", "needs review"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"

    drawing = models.BinaryField(help_text="the drawing as the person saw it, PNG")
    strokes = models.JSONField(
        null=True, blank=True, help_text="the pen's path, [[[x, y], ...], ...] in canvas pixels; null for an image"
    )
    model_input = models.BinaryField(help_text="the 28x28 uint8 image the model read, row by row (784 bytes)")
    label = models.PositiveSmallIntegerField(
        validators=LABEL, db_index=True, help_text="what the user says it is: a digit, or 10 for not a digit"
    )
    guess = models.PositiveSmallIntegerField(
        validators=LABEL, db_index=True, help_text="what the model said: a digit, or 10 for not a digit"
    )
    confidence = models.FloatField(help_text="the model's probability for its guess")
    model_version = models.CharField(max_length=100, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    client_id = models.UUIDField(
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text="the sender's id for this correction: sent again (a retry), it is stored once",
    )
    source = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_index=True,
        help_text='who sent it: "user:<id>" for a signed-in user, else "anon:<hash>" of the client\'s address '
        "and session (never the address itself); empty when unknown (made by a command)",
    )
    # The sender may change its answer for a few minutes (feedback.services.sample_change_answer):
    # a reviewer sees that it did, and what it said first.
    first_label = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=LABEL, help_text="the label first sent, when the sender changed it since"
    )
    changed_at = models.DateTimeField(null=True, blank=True, help_text="when the sender last changed its answer")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="samples",
        help_text="the signed-in user who sent it, if any",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The two counts made as each correction arrives (feedback.services): one source's
            # samples in the last day, and one (guess, label) pair's in the burst window.
            models.Index(fields=["source", "created_at"], name="sample_source_created"),
            models.Index(fields=["guess", "label", "created_at"], name="sample_pair_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(label__lte=NOT_A_DIGIT), name="sample_label_is_a_class"),
            models.CheckConstraint(condition=models.Q(guess__lte=NOT_A_DIGIT), name="sample_guess_is_a_class"),
        ]
        # Reviewing needs change_sample; taking every drawing away as a dataset needs this too.
        permissions = [("export_sample", "Can export samples as a dataset")]

    def __str__(self) -> str:
        return f"#{self.pk}: {label_text(self.label)} (guessed {label_text(self.guess)})"

    @property
    def is_correction(self) -> bool:
        return self.label != self.guess

    def input_array(self) -> np.ndarray:
        """The 28x28 input, ink bright. Strokes are drawn again with today's preprocessing, the
        very function that serves, so training sees them as a guess would; an image-only
        sample keeps the input it was read as."""
        if self.strokes:
            rendered = strokes_to_input(self.stroke_arrays()).image
            if rendered is not None:
                return rendered
        return self.stored_input()

    def stroke_arrays(self) -> list[np.ndarray]:
        """The stored strokes as (n, 2) float arrays of x, y points; none for an image."""
        return [np.array(stroke, dtype=np.float64).reshape(-1, 2) for stroke in self.strokes or []]

    def stored_input(self) -> np.ndarray:
        """The 28x28 input as the model read it when it guessed, ink bright."""
        return np.frombuffer(bytes(self.model_input), dtype=np.uint8).reshape(28, 28)
