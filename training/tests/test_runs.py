"""Runs asked for, refused, cancelled and recovered; the options they share; the admin's pages."""

import os
import re
import subprocess
import time
from argparse import ArgumentParser
from dataclasses import fields

import cv2
import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from recognizer.modelfile import model_load
from recognizer.serving import active_model
from recognizer.store import checkpoint_path
from training import options as run_options
from training.figures import confusion_png
from training.management.commands.train_digits import PARSERS
from training.models import TrainingRun
from training.options import RunOptions
from training.services import (
    RunRefused,
    training_run_cancel,
    training_run_execute,
    training_run_request,
    training_run_start,
    training_runs_recover,
)
from training.tasks import training_run_task

pytestmark = pytest.mark.django_db


def test_the_command_flags_and_the_admin_form_take_their_defaults_from_run_options():
    parser = ArgumentParser()
    run_options.add_arguments(parser, parsers=PARSERS)
    parsed = run_options.from_arguments(vars(parser.parse_args([])))
    assert parsed == RunOptions()
    form = run_options.form_class()()
    assert set(form.fields) == {"epochs", "from_scratch", "approved_only", "force"}
    for f in fields(RunOptions):
        if f.name in form.fields:
            assert form.fields[f.name].initial == f.default
            assert form.fields[f.name].help_text == f.metadata["help"]


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
    options = RunOptions(epochs=2, limit=3000, val_size=500, test_limit=500, data_dir=str(mnist_dir), progress=False).resolved()
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
    assert not checkpoint_path(run=str(run.pk), name="latest").exists()


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

    assert [run.pk for run in training_runs_recover(log=lambda text: None)] == [stale.pk]
    stale.refresh_from_db()
    assert stale.status == TrainingRun.Status.FAILED and stale.in_progress is None
    assert f"its process {dead.pid} is gone" in stale.error
    assert not old_tmp.exists() and young_tmp.exists()
    assert TrainingRun.objects.get(pk=alive.pk).status == TrainingRun.Status.CANDIDATE
    assert training_run_request(options=RunOptions()).status == TrainingRun.Status.QUEUED  # the slot is free


def test_the_confusion_picture_is_a_png_of_the_matrix():
    matrix = (np.eye(10, dtype=int) * 50 + np.eye(10, k=1, dtype=int) * 3).tolist()
    image = cv2.imdecode(np.frombuffer(confusion_png(matrix), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[0] == image.shape[1] > 200
    assert image[image.shape[0] // 2].min() < 200  # cells are drawn, not a blank picture


# -- the admin ----------------------------------------------------------------------------------


def test_retrain_now_in_the_admin_queues_a_run_and_a_second_press_says_one_is_queued(admin_client):
    page = admin_client.get(reverse("admin:training_trainingrun_changelist"))
    assert b"Retrain now" in page.content
    form = admin_client.get(reverse("admin:training_trainingrun_retrain"))
    assert f'value="{RunOptions().epochs}"'.encode() in form.content

    answer = admin_client.post(reverse("admin:training_trainingrun_retrain"), {"epochs": "1", "approved_only": "on"})
    run = TrainingRun.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse("admin:training_trainingrun_change", args=[run.pk])
    assert run.status == TrainingRun.Status.QUEUED and run.options["epochs"] == 1 and run.options["approved_only"]
    assert run.options["lr"] == RunOptions().lr  # everything else from the one options object

    second = admin_client.post(reverse("admin:training_trainingrun_retrain"), {"epochs": "3"}, follow=True)
    assert f"Training run #{run.pk} is already queued" in second.content.decode()
    assert TrainingRun.objects.count() == 1

    page = admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()
    assert '<meta http-equiv="refresh"' in page and "Cancel this run" in page
    admin_client.post(reverse("admin:training_trainingrun_cancel", args=[run.pk]))
    page = admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()
    assert "cancelled" in page and '<meta http-equiv="refresh"' not in page


def test_approving_samples_and_retraining_is_one_bulk_action(admin_client):
    from feedback.models import Sample

    sample = Sample.objects.create(drawing=b"", model_input=bytes(784), label=8, guess=1, confidence=0.9, model_version="x")
    admin_client.post(
        reverse("admin:feedback_sample_changelist"),
        {"action": "approve_and_retrain", "_selected_action": [sample.pk]},
    )
    sample.refresh_from_db()
    assert sample.status == Sample.Status.APPROVED
    assert TrainingRun.objects.get().status == TrainingRun.Status.QUEUED


def test_the_runs_list_shows_shares_with_counts_and_the_status_that_holds_now(admin_client, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL).version
    replaced = TrainingRun.objects.create(
        status="promoted", epochs=2, model_version="20260101-000000-abcd",
        feedback_accuracy_before=0.0, feedback_accuracy=0.75, feedback_holdout=4, mnist_accuracy=0.9961,
    )  # fmt: skip
    failed = TrainingRun.objects.create(status="failed", epochs=2, error="boom")
    page = admin_client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert "75% of 4" in page and "0% of 4" in page and "99.61% of 10,000" in page
    assert "was active, replaced since" in page
    assert f"The shipped model {shipped}" in page and "is active." in page

    answer = admin_client.post(
        reverse("admin:training_trainingrun_changelist"),
        {"action": "activate", "_selected_action": [failed.pk]}, follow=True,
    )  # fmt: skip
    assert f"Run #{failed.pk} is failed and made no model to activate" in answer.content.decode()
    assert "Make this model active" not in admin_client.get(reverse("admin:training_trainingrun_change", args=[failed.pk])).content.decode()
    assert replaced.pk  # listed above


def test_a_finished_run_page_shows_per_digit_figures_and_confusion_pictures(admin_client, mnist_dir):
    call_command(
        "train_digits", "--data-dir", str(mnist_dir), "--limit", "500", "--epochs", "1", "--val-size", "500",
        "--test-limit", "1000", "--no-progress",
    )  # fmt: skip
    run = TrainingRun.objects.get()
    page = admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()
    assert len(re.findall(r'<img src="data:image/png;base64,[^"]+" alt="confusion matrix, MNIST test, (before|after)"', page)) == 2
    assert "MNIST test, before" in page and "MNIST test, after" in page
    assert "99.61% of 10,000" not in page and re.search(r"\d+% of 1,000</td>", page)  # judged on 1,000 test images
    assert len(re.findall(r"<td>\d+% of \d+</td>", page)) == 20  # MNIST test per digit, before and after
