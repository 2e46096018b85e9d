import os
import socket

from django.db import models


def this_worker() -> str:
    """Who works on a run, as its `worker` field holds it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class TrainingRun(models.Model):
    """One training run, from the admin's button or `train_digits`: what it trained on, how far
    it got, how the model did, and whether it went live."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued: waiting for the worker"
        RUNNING = "running", "running"
        GATING = "gating", "gating: judging the new model"
        PROMOTED = "promoted", "promoted: made the active model"
        CANDIDATE = "candidate", "candidate: kept, not promoted"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    UNFINISHED = (Status.QUEUED, Status.RUNNING, Status.GATING)

    started_at = models.DateTimeField(auto_now_add=True, db_index=True, help_text="when the run was asked for")
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="the run's last word; a silent run on another machine is dead")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    # True while queued or working, NULL after: the unique index lets only one run at a time
    # hold it, on SQLite and PostgreSQL alike (NULLs never collide).
    in_progress = models.BooleanField(null=True, unique=True, default=None, editable=False)
    cancel_requested = models.BooleanField(default=False)
    progress = models.CharField(max_length=200, blank=True, help_text="what the run is doing now")
    finish_expected_at = models.DateTimeField(
        null=True, blank=True, help_text="when a working run expects to finish: its progress and elapsed time, or past runs' durations"
    )
    worker = models.CharField(max_length=200, blank=True, help_text="host and process id of whoever works on it")
    task_id = models.CharField(max_length=64, blank=True, help_text="the queued job, for runs from the admin")
    requested_by = models.CharField(max_length=150, blank=True)
    epochs = models.PositiveIntegerField()
    from_scratch = models.BooleanField(default=False)
    base_version = models.CharField(max_length=100, blank=True, help_text="the active model when the run started")
    model_version = models.CharField(max_length=100, blank=True, help_text="the model this run made")
    mnist_samples = models.PositiveIntegerField(default=0, help_text="MNIST images trained on")
    users_samples = models.PositiveIntegerField(default=0, help_text="users' drawings trained on")
    corrections_held_out = models.PositiveIntegerField(default=0, help_text="corrections held out to judge with")
    confirmed_held_out = models.PositiveIntegerField(default=0, help_text="confirmed right guesses held out to judge with")
    mnist_accuracy_before = models.FloatField(null=True, blank=True, help_text="active model, MNIST test set")
    mnist_accuracy = models.FloatField(null=True, blank=True, help_text="new model, MNIST test set")
    corrections_accuracy_before = models.FloatField(null=True, blank=True, help_text="active model, held-out corrections")
    corrections_accuracy = models.FloatField(null=True, blank=True, help_text="new model, held-out corrections")
    confirmed_accuracy_before = models.FloatField(null=True, blank=True, help_text="active model, held-out confirmed")
    confirmed_accuracy = models.FloatField(null=True, blank=True, help_text="new model, held-out confirmed")
    seconds = models.FloatField(null=True, blank=True, help_text="time the run worked, from loading data to publishing")
    decision = models.TextField(blank=True, help_text="why the model was or was not promoted")
    error = models.TextField(blank=True)
    options = models.JSONField(default=dict, help_text="the run's options (training.options.RunOptions)")
    report = models.JSONField(default=dict, blank=True, help_text="per-epoch figures and confusion matrices")
    # No reverse relation: feedback knows nothing of training, not even through the ORM.
    samples = models.ManyToManyField("feedback.Sample", related_name="+", blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        # Viewing runs is not running them: queuing, cancelling and activating a model each need this
        # (training.admin's has_train_permission), beyond view and change.
        permissions = [("train_model", "Can queue, cancel and activate training runs")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"

    @property
    def is_unfinished(self) -> bool:
        return self.status in self.UNFINISHED
