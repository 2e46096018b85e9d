"""What a working run says: on the console, and on its row for the admin's page (at most once a
second), when it expects to finish, how long it has worked, where it stops when someone cancels
it, and how it ends when it fails."""

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.utils import timezone

from training.models import TrainingRun

PROGRESS_EVERY_S = 1.0  # how often a working run writes its progress and looks for a cancel
# The first steps are slow (threads start, caches fill): an estimate from under this share of the
# training's steps would promise too much.
ESTIMATE_FROM = 0.05

Log = Callable[[str], None]
R = TypeVar("R")


class RunCancelled(Exception):
    pass


class Progress:
    def __init__(self, run: TrainingRun, log: Log):
        self.run, self.log, self.last = run, log, 0.0
        self.started = time.perf_counter()
        self.training_since: float | None = None  # monotonic time of the first training step
        self.judging_s = 0.0  # what judging the new model will take: as long as reading the active one took

    def begin(self, *, options: dict, typical_s: float | None) -> None:
        """Record the options the run works with, and until its own steps tell better, expect it
        to take `typical_s` (as past runs of its kind did; None: no estimate yet)."""
        self.run.options = options
        if typical_s is not None:
            self.expect(typical_s)
        self.run.save(update_fields=["options", "finish_expected_at"])

    @property
    def seconds(self) -> float:
        """How long the run has worked."""
        return time.perf_counter() - self.started

    def reading(self, read: Callable[..., R]) -> Callable[..., R]:
        """`read` (a model's reading of the judging sets), timed: judging the new model, and each
        blend, is expected to take as long as the last reading did."""

        def timed(*args, **kwargs) -> R:
            if self.run.status == TrainingRun.Status.GATING:
                self.expect(self.judging_s)
            since = time.perf_counter()
            readings = read(*args, **kwargs)
            self.judging_s = time.perf_counter() - since
            return readings

        return timed

    def expect(self, seconds_left: float) -> None:
        """Note when the run expects to finish; written with its next word."""
        self.run.finish_expected_at = timezone.now() + timedelta(seconds=max(seconds_left, 0.0))

    def training_step(self, *, epoch: int, epochs: int, step: int, steps: int) -> None:
        """A training step's news, and the time left: the training's elapsed time scaled by the
        share of its steps still to come, then judging the new model."""
        now = time.monotonic()
        if self.training_since is None:
            self.training_since = now
        done = ((epoch - 1) * steps + step) / (epochs * steps)
        if done >= ESTIMATE_FROM:
            self.expect((now - self.training_since) * (1 - done) / done + self.judging_s)
        self.step(f"epoch {epoch} of {epochs}: step {step} of {steps}")

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
        TrainingRun.objects.filter(pk=self.run.pk).update(
            progress=self.run.progress, finish_expected_at=self.run.finish_expected_at, updated_at=timezone.now()
        )
        self.check_cancel()

    def end(self, error: BaseException) -> None:
        """Record a run that failed or was cancelled: nothing was published."""
        run = self.run
        cancelled = isinstance(error, (RunCancelled, KeyboardInterrupt))
        run.status = TrainingRun.Status.CANCELLED if cancelled else TrainingRun.Status.FAILED
        run.error = "" if cancelled else f"{type(error).__name__}: {error}"
        run.progress = "cancelled; nothing was published" if cancelled else run.progress
        run.in_progress, run.finished_at, run.seconds = None, timezone.now(), self.seconds
        run.save(update_fields=["status", "error", "progress", "in_progress", "finished_at", "seconds"])
        self.log(f"run {run.pk} {run.status}" + (f": {run.error}" if run.error else ""))
