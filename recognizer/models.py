from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    """A published model, its bytes included (a safetensors file, about 1.1 MB): the store of
    record that every web machine reads, so none needs a shared disk. At most one row is
    active; with none, the shipped model serves. Written only by recognizer.store and
    recognizer.publishing, which record `sha256` with `data` (and `serving_sha256` with
    `serving_form`, built once on publishing) and check them before serving a version."""

    version = models.CharField(max_length=100, unique=True)
    data = models.BinaryField(help_text="the safetensors file: weights and metadata")
    sha256 = models.CharField(max_length=64, help_text="hex SHA-256 of data: a local copy is served only if it matches")
    serving_form = models.BinaryField(
        null=True, blank=True, help_text="what web processes serve: ONNX graphs, float32 and 8-bit (recognizer.servingform); null until built"
    )
    serving_sha256 = models.CharField(max_length=64, blank=True, default="", help_text="hex SHA-256 of serving_form")
    metadata = models.JSONField(default=dict, help_text="the file's metadata, for listing without loading")
    created_at = models.DateTimeField(auto_now_add=True)
    active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="one_active_model_version")]

    def __str__(self) -> str:
        return f"{self.version}{' (active)' if self.active else ''}"


class RememberedCorrection(models.Model):
    """One of a person's recent corrections, or of their drawings whose answer they let stand
    (no sample: label and guess are the digit that stood), as recognizer.memory compares new
    drawings with it: kept here, not in a process, so every web process and machine answers the
    same. Corrections are written by the feedback app when one is stored, changed or taken back
    (feedback -> recognizer; the sample's id is kept as a number, not a foreign key, so
    recognizer never depends on feedback). Bounded per source (settings.MEMORY_SIZE,
    MEMORY_STOOD, MEMORY_HOURS)."""

    source = models.CharField(max_length=64, help_text="who sent it, as feedback's Sample.source: never empty")
    sample_id = models.BigIntegerField(unique=True, null=True, help_text="the feedback sample it remembers (its id); none: a drawing whose answer stood")
    label = models.PositiveSmallIntegerField(help_text="what the person said it is (a digit, or 10: not a digit)")
    guess = models.PositiveSmallIntegerField(help_text="what the model said")
    model_input = models.BinaryField(help_text="the 28x28 uint8 image the model read (784 bytes): features are made again from it for another graph")
    features = models.BinaryField(help_text="the serving graph's pooled features of model_input, float32")
    features_of = models.CharField(max_length=200, help_text='the graph that made them: "<model version> <variant>"')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A source's rows within the window, read when its memory changed.
            models.Index(fields=["source", "created_at"], name="memory_source_created"),
            # Anyone's rows past the window, deleted with each write (recognizer.memory).
            models.Index(fields=["created_at"], name="memory_created"),
        ]

    def __str__(self) -> str:
        if self.sample_id is None:
            return f"{self.source}: a drawing left as {self.label}"
        return f"{self.source}: sample {self.sample_id} is {self.label} (guessed {self.guess})"


class MemoryState(models.Model):
    """How many times a source's remembered rows (RememberedCorrection) have changed: every
    write of recognizer.memory raises it in the same transaction as the change. A process keeps
    what it read of a source's rows under the version it read first, so a guess reads this one
    row, by its key, instead of the rows themselves while nothing changed (recognizer.memory). It
    goes with the source's last rows once they left the window; made again, it starts from the
    clock, so it never comes back to a version a process kept."""

    source = models.CharField(max_length=64, primary_key=True, help_text="as RememberedCorrection.source")
    version = models.PositiveBigIntegerField(help_text="made from the clock (microseconds), raised by every change of the source's remembered rows")

    def __str__(self) -> str:
        return f"{self.source}: version {self.version}"
