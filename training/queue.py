"""A training run's lifecycle, and nothing else: ask for one, start one, cancel it, and clean up
after one whose process died.

The admin's "Retrain now" asks for a run (`training_run_request`: a queued job that the worker
runs, see training.tasks); `manage.py train_digits` starts one in its own process
(`training_run_start`). Either way only one run works at a time: the database lets a single
TrainingRun hold `in_progress`, and a second request is refused with `RunRefused`. What a run
does once it works is training.steps.pipeline's.
"""

import os
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks.exceptions import TaskResultDoesNotExist
from django_tasks_db.models import DBTaskResult

from recognizer.store import temp_files_clean
from training.models import TrainingRun, this_worker
from training.options import RunOptions
from training.tasks import training_run_task

STALE_AFTER = timedelta(minutes=10)  # a run on another machine silent this long is dead

Log = Callable[[str], None]


class RunRefused(Exception):
    """Another run is queued or working; only one run trains at a time."""


def training_run_request(*, options: RunOptions, requested_by: str = "") -> TrainingRun:
    """Queue a run for the worker (the admin's button). Never trains in the caller's process."""
    with transaction.atomic():
        run = _run_claim(options=options, status=TrainingRun.Status.QUEUED, requested_by=requested_by)
        run.task_id = training_run_task.enqueue(run_id=run.pk).id
        run.save(update_fields=["task_id"])
    return run


def training_run_start(*, options: RunOptions, log: Log = print) -> TrainingRun:
    """Claim the slot for a run this process works on itself (`train_digits`), after marking
    runs whose process died as failed."""
    training_runs_recover(log=log)
    run = _run_claim(options=options, status=TrainingRun.Status.RUNNING, requested_by="manage.py train_digits")
    run.worker = this_worker()
    run.save(update_fields=["worker"])
    return run


def _run_claim(*, options: RunOptions, status: str, requested_by: str) -> TrainingRun:
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(
                status=status, in_progress=True, epochs=options.epochs, from_scratch=options.from_scratch,
                options=options.as_dict(), requested_by=requested_by,
            )  # fmt: skip
    except IntegrityError:
        busy = TrainingRun.objects.filter(in_progress=True).first()
        raise RunRefused(_busy_message(busy)) from None


def _busy_message(run: TrainingRun | None) -> str:
    if run is None:  # it finished between the refusal and this look
        return "Another training run was starting; try again."
    what = run.progress or run.get_status_display()
    return (
        f"Training run #{run.pk} is already {run.status} ({what}). Only one run trains at a time: "
        "wait for it to finish, or cancel it first."
    )


def training_run_cancel(*, run: TrainingRun) -> str:
    """Cancel a queued run at once; ask a working one to stop at its next step. Returns what happened."""
    with transaction.atomic():
        updated = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.CANCELLED, in_progress=None, finished_at=timezone.now(),
            progress="cancelled before it started",
        )  # fmt: skip
        if updated:
            return f"Run #{run.pk} was cancelled before it started."
        updated = TrainingRun.objects.filter(pk=run.pk, status__in=TrainingRun.UNFINISHED).update(cancel_requested=True)
    if updated:
        return f"Run #{run.pk} will stop at its next step; the active model stays as it is."
    return f"Run #{run.pk} has already finished ({run.status}); there is nothing to cancel."


def training_runs_recover(*, log: Log = print) -> list[TrainingRun]:
    """Mark failed every unfinished run whose process is gone (killed, machine restarted), free
    the slot it held, and remove any half-written model files. The worker and `train_digits`
    call this when they start. The files go first: once a run reads "failed", what it left is
    already gone, so whoever watches the status sees a clean model folder."""
    stale = [(run, reason) for run in TrainingRun.objects.filter(status__in=TrainingRun.UNFINISHED) if (reason := _why_stale(run))]
    for path in temp_files_clean():
        log(f"removed the half-written file {path}")
    recovered = []
    for run, reason in stale:
        _job_mark_failed(run.task_id, reason)  # the job first too: "failed" is the last word
        TrainingRun.objects.filter(pk=run.pk).update(
            status=TrainingRun.Status.FAILED, in_progress=None, finished_at=timezone.now(),
            error=f"{reason}; marked failed by {this_worker()}. The active model was left as it was.",
        )  # fmt: skip
        log(f"run {run.pk} ({run.status}) was left unfinished: {reason}; marked failed")
        recovered.append(run)
    return recovered


def _why_stale(run: TrainingRun) -> str | None:
    if run.status == TrainingRun.Status.QUEUED:
        state = _job_status(run.task_id)
        return None if state in (TaskResultStatus.READY, TaskResultStatus.RUNNING) else f"its queued job is {state.lower()}"
    host, _, pid = run.worker.rpartition(":")
    if host == this_worker().rpartition(":")[0] and pid.isdigit():
        return None if _process_alive(int(pid)) else f"its process {pid} is gone"
    if timezone.now() - run.updated_at > STALE_AFTER:
        return f"no word from {run.worker or 'its process'} since {run.updated_at:%Y-%m-%d %H:%M:%S}"
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job_status(task_id: str) -> str:
    """The queued job's status, through the Tasks API; "missing" when there is none."""
    if not task_id:
        return "missing"
    try:
        return training_run_task.get_result(task_id).status
    except TaskResultDoesNotExist:
        return "missing"


def _job_mark_failed(task_id: str, reason: str) -> None:
    """A job the killed worker held stays RUNNING for ever otherwise; django-tasks-db marks it failed."""
    if task_id:
        for job in DBTaskResult.objects.filter(id=task_id, status=TaskResultStatus.RUNNING):
            job.set_failed(RuntimeError(reason))
