"""What a working run says: on the console, and on its row for the admin's page (at most once a
second), and where it stops when someone cancels it."""

import time
from collections.abc import Callable

from django.utils import timezone

from training.models import TrainingRun

PROGRESS_EVERY_S = 1.0  # how often a working run writes its progress and looks for a cancel

Log = Callable[[str], None]


class RunCancelled(Exception):
    pass


class Progress:
    def __init__(self, run: TrainingRun, log: Log):
        self.run, self.log, self.last = run, log, 0.0

    def say(self, text: str) -> None:
        """A line for the console and the run's page, written at once."""
        self.log(text)
        self._write(text)

    def step(self, text: str) -> None:
        """A training step's news: on the run's page at most once a second."""
        if time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self._write(text)

    def stage(self, status: str, text: str) -> None:
        self.run.status = status
        TrainingRun.objects.filter(pk=self.run.pk).update(status=status)
        self.say(text)

    def check_cancel(self) -> None:
        if TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            raise RunCancelled(f"run {self.run.pk} was cancelled")

    def _write(self, text: str) -> None:
        self.last = time.monotonic()
        self.run.progress = text[:200]
        TrainingRun.objects.filter(pk=self.run.pk).update(progress=self.run.progress, updated_at=timezone.now())
        self.check_cancel()
