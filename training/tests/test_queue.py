"""Runs asked for, refused, cancelled and recovered: one at a time, and none left hanging."""

import os
import subprocess
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_tasks import TaskResultStatus

from recognizer.serving import active_model
from training.models import TrainingRun
from training.options import RunOptions
from training.queue import RunRefused, training_run_cancel, training_run_request, training_run_start, training_runs_recover
from training.steps.pipeline import training_run_execute
from training.tasks import training_run_task

pytestmark = pytest.mark.django_db


def test_a_second_request_while_one_is_queued_is_refused_and_says_which_run():
    first = training_run_request(options=RunOptions(epochs=1))
    assert first.status == TrainingRun.Status.QUEUED and first.task_id
    with pytest.raises(RunRefused, match=rf"run #{first.pk} is already queued"):
        training_run_request(options=RunOptions())
    with pytest.raises(CommandError, match=rf"run #{first.pk} is already queued.*cancel it first"):
        call_command("train_digits", "--no-progress")
    assert TrainingRun.objects.count() == 1


def test_a_cancelled_queued_run_frees_the_slot_and_the_worker_skips_it():
    run = training_run_request(options=RunOptions(epochs=1))
    assert "cancelled before it started" in training_run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED and run.in_progress is None
    assert training_run_task.call(run_id=run.pk) == f"run {run.pk} was no longer queued"
    assert training_run_request(options=RunOptions(epochs=1)).status == TrainingRun.Status.QUEUED


def test_cancelling_a_run_while_it_fits_stops_it_at_the_next_step_and_publishes_nothing(mnist_dir, isolated_models):
    shipped = active_model().version
    options = RunOptions(epochs=2, limit=3000, val_size=500, test_limit=500, data_dir=str(mnist_dir), progress=False)
    run = training_run_start(options=options, log=lambda text: None)
    said = []

    def log(text: str) -> None:
        said.append(text)
        if text.startswith("fitting"):  # someone presses "Cancel this run" now
            training_run_cancel(run=TrainingRun.objects.get(pk=run.pk))

    run = training_run_execute(run=run, log=log)
    assert run.status == TrainingRun.Status.CANCELLED and run.in_progress is None and run.error == ""
    assert not any("epoch 2 of 2 done" in text for text in said)  # stopped within the first epoch
    assert active_model().version == shipped
    assert not (isolated_models / "versions").exists() or not any((isolated_models / "versions").iterdir())
    assert not list(isolated_models.rglob("*.safetensors"))  # nothing written on the way either


def test_a_run_whose_process_is_gone_is_marked_failed_and_its_half_written_files_removed(isolated_models):
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = os.uname().nodename
    stale = TrainingRun.objects.create(status="running", in_progress=True, epochs=2, worker=f"{host}:{dead.pid}")
    alive = TrainingRun.objects.create(status="candidate", epochs=1, worker=f"{host}:{os.getpid()}")
    isolated_models.mkdir(parents=True, exist_ok=True)
    old_tmp = isolated_models / ".active.safetensors.abc.tmp"
    old_tmp.write_bytes(b"half")
    os.utime(old_tmp, (time.time() - 3600, time.time() - 3600))
    young_tmp = isolated_models / ".active.safetensors.def.tmp"  # someone may be writing it now
    young_tmp.write_bytes(b"half")

    seen_when_failed = []

    def log(text: str) -> None:
        # What a watcher finds once the run reads "failed": its leftovers already gone.
        if TrainingRun.objects.get(pk=stale.pk).status == TrainingRun.Status.FAILED:
            seen_when_failed.append(old_tmp.exists())

    assert [run.pk for run in training_runs_recover(log=log)] == [stale.pk]
    assert seen_when_failed == [False]
    stale.refresh_from_db()
    assert stale.status == TrainingRun.Status.FAILED and stale.in_progress is None
    assert f"its process {dead.pid} is gone" in stale.error
    assert not old_tmp.exists() and young_tmp.exists()
    assert TrainingRun.objects.get(pk=alive.pk).status == TrainingRun.Status.CANDIDATE
    assert training_run_request(options=RunOptions()).status == TrainingRun.Status.QUEUED  # the slot is free


def test_a_queued_job_whose_worker_was_killed_is_marked_failed_through_the_tasks_api():
    run = training_run_request(options=RunOptions(epochs=1))
    job = training_run_task.get_result(run.task_id)
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.filter(id=run.task_id).update(status=TaskResultStatus.RUNNING)  # a worker claimed it, then died
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING, worker="elsewhere:1", updated_at="2000-01-01T00:00:00Z")

    assert [r.pk for r in training_runs_recover(log=lambda text: None)] == [run.pk]
    job.refresh()
    assert job.status == TaskResultStatus.FAILED
    assert TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.FAILED
