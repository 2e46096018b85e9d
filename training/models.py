from django.db import models


class TrainingRun(models.Model):
    """One `train_digits` run: what it trained on, how the model did, and whether it went live."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        PROMOTED = "promoted", "promoted: now the active model"
        CANDIDATE = "candidate", "candidate: kept, not promoted"
        FAILED = "failed", "failed"

    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    epochs = models.PositiveIntegerField()
    from_scratch = models.BooleanField(default=False)
    base_version = models.CharField(max_length=100, blank=True, help_text="the active model when the run started")
    model_version = models.CharField(max_length=100, blank=True, help_text="the model this run made")
    mnist_samples = models.PositiveIntegerField(default=0, help_text="MNIST images trained on")
    feedback_samples = models.PositiveIntegerField(default=0, help_text="corrections trained on")
    feedback_holdout = models.PositiveIntegerField(default=0, help_text="corrections held out to evaluate")
    mnist_accuracy_before = models.FloatField(null=True, blank=True, help_text="active model, MNIST test set")
    mnist_accuracy = models.FloatField(null=True, blank=True, help_text="new model, MNIST test set")
    feedback_accuracy_before = models.FloatField(null=True, blank=True, help_text="active model, held-out corrections")
    feedback_accuracy = models.FloatField(null=True, blank=True, help_text="new model, held-out corrections")
    decision = models.TextField(blank=True, help_text="why the model was or was not promoted")
    error = models.TextField(blank=True)
    options = models.JSONField(default=dict, help_text="the command's flags")
    samples = models.ManyToManyField("feedback.Sample", related_name="training_runs", blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.get_status_display()})"
