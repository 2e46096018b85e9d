"""A burst of corrections of one sure guess waits for review before anything trains on it, and
one source may send only so many samples a day. The real model reads every drawing here: a
clearly drawn 1 is read as a 1 without doubt, so labelling it 7 is a sure guess corrected."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from feedback.models import Sample
from feedback.selectors import samples_for_training
from feedback.services import sample_create, sample_review
from feedback.tests.factories import SampleFactory, staff_user
from recognizer.preprocessing import decode_data_url
from recognizer.services import SURE_THRESHOLD
from recognizer.tests.drawings import ONE_OR_SEVEN, as_json, drawn

FEEDBACK = "/api/feedback/"
CHANGELIST = "/admin/feedback/sample/"


@pytest.fixture
def api(db):
    return APIClient()


def correct(client: APIClient, *, digit: int = 1, label: int = 7, address: str = "127.0.0.1"):
    """Post a clear drawing of `digit`, said to be `label`."""
    return client.post(FEEDBACK, {"image": drawn(digit), "label": label}, format="json", REMOTE_ADDR=address)


def statuses() -> list[str]:
    return list(Sample.objects.order_by("id").values_list("status", flat=True))


# -- bursts -------------------------------------------------------------------------------------


def test_a_burst_from_one_source_waits_for_review_the_earlier_corrections_of_it_too(api):
    answers = [correct(api).json() for _ in range(10)]  # DIGITSITE_BURST_PER_SOURCE's default
    assert all(a["guess"] == 1 and a["confidence"] >= SURE_THRESHOLD for a in answers)
    assert [a["status"] for a in answers] == ["new"] * 9 + ["needs_review"]
    assert statuses() == ["needs_review"] * 10
    assert len({s.source for s in Sample.objects.all()}) == 1


def test_a_burst_across_thirty_sources_waits_for_review(db):
    # 30 addresses, each a fresh client: no one source sends enough to look like a burst.
    answers = [correct(APIClient(), address=f"10.0.0.{i}").json() for i in range(30)]
    assert len(set(Sample.objects.values_list("source", flat=True))) == 30
    assert [a["status"] for a in answers] == ["new"] * 19 + ["needs_review"] * 11  # DIGITSITE_BURST_ALL_SOURCES: 20
    assert statuses() == ["needs_review"] * 30


def test_corrections_of_a_guess_the_model_was_not_sure_of_are_not_a_burst(api):
    for _ in range(6):
        response = api.post(FEEDBACK, {"strokes": as_json(ONE_OR_SEVEN), "label": 7}, format="json")
        assert response.json()["confidence"] < SURE_THRESHOLD
    assert statuses() == ["new"] * 6


def test_corrections_of_different_pairs_and_confirmed_guesses_are_not_a_burst(api):
    for digit, label in [(1, 7), (1, 4), (7, 1), (4, 9), (7, 7)] * 4:
        assert correct(api, digit=digit, label=label).json()["status"] == "new"
    assert statuses() == ["new"] * 20


def test_samples_made_by_commands_are_neither_held_nor_counted(api, settings):
    settings.BURST_ALL_SOURCES = 3
    for _ in range(4):
        sample_create(image=decode_data_url(drawn(1)), label=7)  # no source: an operator's
    assert statuses() == ["new"] * 4
    assert [correct(api, address=f"10.0.0.{i}").json()["status"] for i in range(3)] == ["new", "new", "needs_review"]
    assert statuses() == ["new"] * 4 + ["needs_review"] * 3


def test_corrections_older_than_the_window_do_not_count(api, settings):
    for _ in range(4):
        correct(api)
    Sample.objects.update(created_at=timezone.now() - timedelta(minutes=settings.BURST_WINDOW_MINUTES + 1))
    assert correct(api).json()["status"] == "new"
    assert statuses() == ["new"] * 5


def test_the_burst_thresholds_come_from_the_settings(api, settings):
    settings.BURST_PER_SOURCE = 2
    assert [correct(api).json()["status"] for _ in range(2)] == ["new", "needs_review"]
    settings.BURST_PER_SOURCE, settings.BURST_ALL_SOURCES = 0, 0  # both switched off
    assert correct(api, digit=4, label=9).json()["status"] == "new"
    assert [correct(api, digit=4, label=9).json()["status"] for _ in range(3)] == ["new"] * 3


def test_a_burst_leaves_reviewed_samples_of_it_as_they_were(api, settings):
    settings.BURST_PER_SOURCE = 3
    correct(api)
    sample_review(samples=Sample.objects.all(), status=Sample.Status.APPROVED)
    correct(api)
    correct(api)
    assert statuses() == ["approved", "needs_review", "needs_review"]


# -- training leaves them out until approved ------------------------------------------------------


def test_samples_waiting_for_review_are_not_trained_on_until_approved(db):
    new, waiting, approved, rejected = (
        SampleFactory(guess=1, label=7, status=status) for status in ["new", "needs_review", "approved", "rejected"]
    )
    assert list(samples_for_training()) == [new, approved]
    assert list(samples_for_training(approved_only=True)) == [approved]
    sample_review(samples=[waiting], status=Sample.Status.APPROVED)
    assert list(samples_for_training()) == [new, waiting, approved]
    assert list(samples_for_training(approved_only=True)) == [waiting, approved]
    assert samples_for_training().values_list("source", flat=True)[0] == ""


def test_the_admin_lists_and_approves_samples_waiting_for_review(client, db):
    waiting = [SampleFactory(guess=1, label=7, status="needs_review") for _ in range(2)]
    SampleFactory(guess=1, label=7)
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "a-long-password-42"))
    page = client.get(CHANGELIST)
    assert "?status__exact=needs_review" in page.content.decode() and "needs review" in page.content.decode()
    assert client.get(f"{CHANGELIST}?status__exact=needs_review").context["cl"].result_count == 2
    client.post(CHANGELIST, {"action": "approve", "_selected_action": [waiting[0].pk]})
    assert set(samples_for_training()) == set(Sample.objects.exclude(pk=waiting[1].pk))


# -- the daily cap ------------------------------------------------------------------------------


def test_past_the_daily_cap_a_source_is_answered_429_and_nothing_is_stored(api, settings):
    settings.FEEDBACK_PER_SOURCE_DAILY = 3
    assert [correct(api, digit=4, label=4).status_code for _ in range(3)] == [201] * 3
    response = correct(api, digit=4, label=4)
    assert response.status_code == 429
    body = response.json()
    assert "daily limit" in body["detail"].lower() and "3" in body["detail"] and body["message"] == body["detail"]
    assert body["extra"] == {"daily_limit": 3}
    assert 0 < int(response["Retry-After"]) <= 24 * 3600
    assert Sample.objects.count() == 3
    assert correct(APIClient(), digit=4, label=4).status_code == 201  # another source is not held back


def test_the_daily_cap_counts_the_last_24_hours_only(api, settings):
    settings.FEEDBACK_PER_SOURCE_DAILY = 2
    correct(api, digit=4, label=4)
    correct(api, digit=4, label=4)
    Sample.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))
    assert correct(api, digit=4, label=4).status_code == 201


def test_a_retry_of_a_stored_correction_is_answered_past_the_daily_cap(api, settings):
    settings.FEEDBACK_PER_SOURCE_DAILY = 1
    posted = {"image": drawn(4), "label": 4, "client_id": "0b5f6f3e-9a47-4c55-8f2e-1d8a6a3c7e21"}
    assert api.post(FEEDBACK, posted, format="json").status_code == 201
    assert api.post(FEEDBACK, posted, format="json").status_code == 200
    assert Sample.objects.count() == 1


def test_a_signed_in_user_is_capped_but_a_reviewer_is_not(api, settings):
    settings.FEEDBACK_PER_SOURCE_DAILY = 2
    api.force_login(User.objects.create_user("drawer"))
    assert [correct(api, digit=4, label=4).status_code for _ in range(3)] == [201, 201, 429]
    reviewer = APIClient()
    reviewer.force_login(staff_user(username="reviewer", permissions=["feedback.change_sample"]))
    assert [correct(reviewer, digit=4, label=4).status_code for _ in range(4)] == [201] * 4
    assert Sample.objects.count() == 6
