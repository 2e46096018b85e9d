"""Training runs in the admin: viewing them is not running them. Queuing, cancelling and
activating a model each need training.train_model, whatever the page shows; a user without it is
offered none of them, and a POST of one changes nothing."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from feedback.models import Sample
from feedback.tests.factories import SampleFactory, offered_actions, staff_user
from recognizer.modelfile import model_load
from recognizer.publishing import model_publish
from recognizer.serving import active_model
from training.models import TrainingRun
from training.options import RunOptions
from training.queue import training_run_request

VIEW_ONLY = ["feedback.view_sample", "training.view_trainingrun"]
TRAINER = [*VIEW_ONLY, "training.train_model"]
CHANGELIST = reverse("admin:training_trainingrun_changelist")
NEW_VERSION = "20260101-000000-perm"


def logged_in(*, username: str, permissions: list[str]) -> Client:
    client = Client()
    client.force_login(staff_user(username=username, permissions=permissions))
    return client


@pytest.fixture
def viewer(db) -> Client:
    return logged_in(username="viewer", permissions=VIEW_ONLY)


@pytest.fixture
def trainer(db) -> Client:
    return logged_in(username="trainer", permissions=TRAINER)


@pytest.fixture
def candidate(db) -> TrainingRun:
    """A run whose model (the shipped one's weights under a new version) was kept, not made active."""
    shipped = model_load(path=settings.SHIPPED_MODEL)
    model_publish(net=shipped.net, metadata={**shipped.metadata, "version": NEW_VERSION}, activate=False)
    return TrainingRun.objects.create(status=TrainingRun.Status.CANDIDATE, epochs=1, model_version=NEW_VERSION)


@pytest.fixture
def queued(db) -> TrainingRun:
    return training_run_request(options=RunOptions(epochs=1), requested_by="someone")


def test_a_view_only_staff_user_sees_the_runs_but_no_action_retrain_or_activate_button(viewer, candidate):
    page = viewer.get(CHANGELIST)
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    assert offered_actions(page) == set()
    html = page.content.decode()
    assert "Retrain now" not in html and reverse("admin:training_trainingrun_retrain") not in html
    run_page = viewer.get(reverse("admin:training_trainingrun_change", args=[candidate.pk])).content.decode()
    assert "Make this model active" not in run_page


def test_a_staff_user_with_train_model_is_offered_the_actions_and_the_buttons(trainer, candidate):
    page = trainer.get(CHANGELIST)
    assert offered_actions(page) == {"activate", "cancel"}
    assert "Retrain now" in page.content.decode()
    assert "Make this model active" in trainer.get(reverse("admin:training_trainingrun_change", args=[candidate.pk])).content.decode()


def test_a_view_only_staff_user_cannot_activate_a_model(viewer, candidate):
    shipped = active_model().version
    viewer.post(CHANGELIST, {"action": "activate", "_selected_action": [candidate.pk]})
    assert viewer.post(reverse("admin:training_trainingrun_activate", args=[candidate.pk]), {"confirm": "yes"}).status_code == 403
    assert active_model().version == shipped != NEW_VERSION


def test_a_staff_user_with_train_model_can_activate_a_model_by_the_action_and_the_button(trainer, candidate):
    shipped = model_load(path=settings.SHIPPED_MODEL).version
    asked = trainer.post(CHANGELIST, {"action": "activate", "_selected_action": [candidate.pk]})
    assert "Yes, make it active anyway" in asked.content.decode() and active_model().version == shipped  # a candidate: asked first
    trainer.post(reverse("admin:training_trainingrun_activate", args=[candidate.pk]), {"confirm": "yes"})
    assert active_model().version == NEW_VERSION
    assert trainer.post(reverse("admin:training_trainingrun_activate_shipped")).status_code == 302
    assert active_model().version == shipped
    assert trainer.post(reverse("admin:training_trainingrun_activate", args=[candidate.pk]), {"confirm": "yes"}).status_code == 302
    assert active_model().version == NEW_VERSION


def test_a_view_only_staff_user_cannot_activate_the_shipped_model_again(viewer, trainer, candidate):
    trainer.post(reverse("admin:training_trainingrun_activate", args=[candidate.pk]), {"confirm": "yes"})
    assert active_model().version == NEW_VERSION
    assert "Activate the shipped model" not in viewer.get(CHANGELIST).content.decode()
    assert viewer.post(reverse("admin:training_trainingrun_activate_shipped")).status_code == 403
    assert active_model().version == NEW_VERSION


def test_a_view_only_staff_user_cannot_cancel_a_run(viewer, queued):
    assert "Cancel this run" not in viewer.get(reverse("admin:training_trainingrun_change", args=[queued.pk])).content.decode()
    viewer.post(CHANGELIST, {"action": "cancel", "_selected_action": [queued.pk]})
    assert viewer.post(reverse("admin:training_trainingrun_cancel", args=[queued.pk])).status_code == 403
    queued.refresh_from_db()
    assert queued.status == TrainingRun.Status.QUEUED and not queued.cancel_requested


def test_a_staff_user_with_train_model_can_cancel_a_run_by_the_action(trainer, queued):
    trainer.post(CHANGELIST, {"action": "cancel", "_selected_action": [queued.pk]})
    queued.refresh_from_db()
    assert queued.status == TrainingRun.Status.CANCELLED


@pytest.mark.parametrize("permissions", [VIEW_ONLY, [*VIEW_ONLY, "training.change_trainingrun", "feedback.change_sample"]], ids=["view", "change"])
def test_a_staff_user_without_train_model_cannot_queue_a_run(db, permissions):
    client = logged_in(username="someone", permissions=permissions)
    assert client.get(reverse("admin:training_trainingrun_retrain")).status_code == 403
    assert client.post(reverse("admin:training_trainingrun_retrain"), {"epochs": "1"}).status_code == 403
    assert not TrainingRun.objects.exists()


def test_a_staff_user_with_train_model_can_queue_a_run(trainer):
    assert trainer.get(reverse("admin:training_trainingrun_retrain")).status_code == 200
    assert trainer.post(reverse("admin:training_trainingrun_retrain"), {"epochs": "1"}).status_code == 302
    assert TrainingRun.objects.get().status == TrainingRun.Status.QUEUED


@pytest.mark.parametrize(
    "permissions", [VIEW_ONLY, [*VIEW_ONLY, "feedback.change_sample"], TRAINER], ids=["view", "review only", "train only"]
)
def test_approving_and_retraining_needs_both_change_sample_and_train_model(db, permissions):
    sample = SampleFactory(guess=1, label=7)
    client = logged_in(username="someone", permissions=permissions)
    assert "approve_and_retrain" not in offered_actions(client.get(reverse("admin:feedback_sample_changelist")))
    client.post(reverse("admin:feedback_sample_changelist"), {"action": "approve_and_retrain", "_selected_action": [sample.pk]})
    sample.refresh_from_db()
    assert sample.status == Sample.Status.NEW and not TrainingRun.objects.exists()


def test_a_staff_user_with_change_sample_and_train_model_can_approve_and_retrain(db):
    sample = SampleFactory(guess=1, label=7)
    client = logged_in(username="reviewer", permissions=[*TRAINER, "feedback.change_sample"])
    assert "approve_and_retrain" in offered_actions(client.get(reverse("admin:feedback_sample_changelist")))
    client.post(reverse("admin:feedback_sample_changelist"), {"action": "approve_and_retrain", "_selected_action": [sample.pk]})
    sample.refresh_from_db()
    assert sample.status == Sample.Status.APPROVED and TrainingRun.objects.get().status == TrainingRun.Status.QUEUED
