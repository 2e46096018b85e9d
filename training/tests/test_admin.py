"""The admin's pages for training runs: Retrain now, the runs list, a run's page, and the
"Approve and retrain" action training adds to the samples' list."""

import re

import cv2
import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from recognizer.modelfile import model_load
from training.models import TrainingRun
from training.options import RunOptions
from training.runs.figures import confusion_png

pytestmark = pytest.mark.django_db


def test_the_confusion_picture_is_a_png_of_the_matrix():
    matrix = (np.eye(10, dtype=int) * 50 + np.eye(10, k=1, dtype=int) * 3).tolist()
    image = cv2.imdecode(np.frombuffer(confusion_png(matrix), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[0] == image.shape[1] > 200
    assert image[image.shape[0] // 2].min() < 200  # cells are drawn, not a blank picture


def test_retrain_now_in_the_admin_queues_a_run_and_a_second_press_says_one_is_queued(admin_client):
    page = admin_client.get(reverse("admin:training_trainingrun_changelist"))
    assert b"Retrain now" in page.content
    form = admin_client.get(reverse("admin:training_trainingrun_retrain"))
    assert f'value="{RunOptions().epochs}"'.encode() in form.content

    answer = admin_client.post(reverse("admin:training_trainingrun_retrain"), {"epochs": "1", "approved_only": "on"})
    run = TrainingRun.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse("admin:training_trainingrun_change", args=[run.pk])
    assert run.status == TrainingRun.Status.QUEUED and run.options["epochs"] == 1 and run.options["approved_only"]
    assert run.options == RunOptions(epochs=1, approved_only=True).as_dict()  # everything else from the one options object

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


def test_the_runs_list_shows_figures_before_and_after_and_the_status_that_holds_now(admin_client, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL).version
    replaced = TrainingRun.objects.create(
        status="promoted", epochs=2, model_version="20260101-000000-abcd",
        corrections_accuracy_before=0.0, corrections_accuracy=0.75, corrections_held_out=4, mnist_accuracy=0.9961,
    )  # fmt: skip
    failed = TrainingRun.objects.create(status="failed", epochs=2, error="boom")
    page = admin_client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert "0 → 3 of 4" in page and "<td class=\"field-mnist_figures\">99.61%</td>" in page
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
    # MNIST test and the pen guard set per digit, before and after, as error counts ("3 of 1,032"
    # read wrong): a change shows
    assert len(re.findall(r"<td style=\"white-space:nowrap\">\d+ of [\d,]+</td>", page)) == 40
    assert f"<h1>Training run {run.pk}</h1>" in page and "Change training run" not in page
    assert re.search(r"<div class=\"readonly\">\d+ s</div>", page)  # whole seconds
    assert "<tr><th>lr</th><td>0.0005</td></tr>" in page and "<tr><th>freeze_bn</th><td>on</td></tr>" in page
    assert "<th>pen guard set<br>before</th>" in page and "<tr><th>9</th>" in page and re.search(r"pen guard set \(shipped with the code\)</th><td>[\d.]+% of 2,498</td>", page)


def test_the_admin_index_shows_the_queues_jobs_only_to_a_superuser_and_names_them_for_what_they_are(admin_client):
    from django.test import Client

    from feedback.tests.factories import staff_user

    index = admin_client.get(reverse("admin:index")).content.decode()
    assert "Training queue: the worker&#x27;s jobs (for debugging)" in index and "Task Results" in index
    reviewer = Client()
    reviewer.force_login(staff_user(username="reviewer", permissions=["feedback.view_sample", "training.view_trainingrun", "django_tasks_database.view_dbtaskresult"]))
    index = reviewer.get(reverse("admin:index")).content.decode()
    assert "Training runs" in index and "Task Results" not in index and "Training queue" not in index


def test_a_working_run_shows_the_time_it_expects_to_take_still_on_its_page_and_the_list(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    run = TrainingRun.objects.create(
        status="running", in_progress=True, epochs=2, progress="epoch 1 of 2: step 100 of 400", finish_expected_at=timezone.now() + timedelta(seconds=150)
    )  # fmt: skip
    assert "about 2 min left" in admin_client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert "about 2 min left" in admin_client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()
    TrainingRun.objects.filter(pk=run.pk).update(status="promoted", in_progress=None, seconds=161.4)
    page = admin_client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert "161 s" in page and "left" not in page


@pytest.mark.parametrize("share", [0.2, 0.5])
def test_a_samples_page_says_whether_runs_train_on_it_or_hold_it_out_by_the_sites_own_holdout_share(admin_client, settings, share):
    from feedback.selectors import sample_is_held_out
    from feedback.tests.factories import SampleFactory

    settings.TRAINING_OPTIONS = {"holdout": share}
    held, trained = [], []
    while not (held and trained):  # both kinds, whatever ids the database gives
        sample = SampleFactory(guess=1, label=7)
        (held if sample_is_held_out(sample_id=sample.pk, holdout_share=share) else trained).append(sample)

    held_page = admin_client.get(reverse("admin:feedback_sample_change", args=[held[0].pk])).content.decode()
    trained_page = admin_client.get(reverse("admin:feedback_sample_change", args=[trained[0].pk])).content.decode()
    assert f"held out to judge new models with (the {share:.0%} of drawings chosen by id): not trained on while a run has at least 5" in held_page
    assert "none yet" in trained_page and "held out" not in trained_page
    run = TrainingRun.objects.create(status="promoted", epochs=1, model_version="v-trained")
    run.samples.add(trained[0])
    assert f"#{run.pk} (v-trained)" in admin_client.get(reverse("admin:feedback_sample_change", args=[trained[0].pk])).content.decode()


def test_feedbacks_own_samples_admin_knows_nothing_of_training():
    from django.contrib import admin

    from feedback.admin import SampleAdmin
    from feedback.models import Sample
    from training.admin.samples import TrainingSampleAdmin

    assert type(admin.site._registry[Sample]) is TrainingSampleAdmin and issubclass(TrainingSampleAdmin, SampleAdmin)
    assert "approve_and_retrain" not in SampleAdmin.actions and "used_by" not in SampleAdmin.fields
    assert not hasattr(SampleAdmin, "has_approve_and_train_permission")
    assert TrainingSampleAdmin.actions[:2] == ["approve", "approve_and_retrain"]
