"""A sender changes or takes back its own answer, by its client_id, for a few minutes; and the
"not a digit" answer. The real model reads every drawing: a clear 1 is a sure 1."""

import csv
import io
import uuid
import zipfile
from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from feedback import services
from feedback.models import Sample
from feedback.selectors import sample_export_zip
from feedback.services import sample_review
from recognizer.labels import NOT_A_DIGIT
from recognizer.services import SURE_THRESHOLD, digit_predict
from recognizer.tests.drawings import drawn

FEEDBACK = "/api/feedback/"


@pytest.fixture
def api(db):
    return APIClient()


def send(client: APIClient, *, label, digit: int = 1, client_id: uuid.UUID | None = None, address: str = "127.0.0.1"):
    body = {"image": drawn(digit), "label": label, "client_id": str(client_id or uuid.uuid4())}
    return client.post(FEEDBACK, body, format="json", REMOTE_ADDR=address)


def answer_url(client_id) -> str:
    return f"{FEEDBACK}{client_id}/"


# -- changing an answer -------------------------------------------------------------------------


def test_the_sender_changes_its_answer_and_the_first_label_is_kept(api):
    stored = send(api, label=6).json()
    assert stored["changeable_until"] is not None
    response = api.patch(answer_url(stored["client_id"]), {"label": 1}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["label"], body["first_label"], body["is_correction"]) == (stored["id"], 1, 6, False)
    sample = Sample.objects.get()
    assert (sample.label, sample.first_label) == (1, 6) and sample.changed_at is not None
    # Changed again, the first label stays the one first sent.
    api.patch(answer_url(stored["client_id"]), {"label": 7}, format="json")
    sample.refresh_from_db()
    assert (sample.label, sample.first_label) == (7, 6)


def test_the_page_flow_with_csrf_changes_and_takes_back_an_answer(page_client):
    client_id = uuid.uuid4()
    assert page_client.post(FEEDBACK, {"image": drawn(1), "label": 7, "client_id": str(client_id)}, format="json").status_code == 201
    assert page_client.patch(answer_url(client_id), {"label": 1}, format="json").status_code == 200
    assert page_client.delete(answer_url(client_id)).status_code == 204
    assert Sample.objects.count() == 0


def test_changing_an_answer_without_the_csrf_token_is_refused(page_client):
    client_id = uuid.uuid4()
    page_client.post(FEEDBACK, {"image": drawn(1), "label": 7, "client_id": str(client_id)}, format="json")
    stranger = APIClient(enforce_csrf_checks=True)
    assert stranger.patch(answer_url(client_id), {"label": 1}, format="json").status_code == 403
    assert stranger.delete(answer_url(client_id)).status_code == 403
    assert Sample.objects.get().label == 7


def test_an_unknown_client_id_is_answered_404_in_json(api):
    send(api, label=7)
    response = api.patch(answer_url(uuid.uuid4()), {"label": 1}, format="json")
    assert response.status_code == 404
    assert "No answer was stored with this client_id" in response.json()["message"]
    assert api.delete(answer_url(uuid.uuid4())).status_code == 404
    assert api.patch(f"{FEEDBACK}not-a-uuid/", {"label": 1}, format="json").status_code == 404
    assert Sample.objects.get().label == 7


def test_after_the_window_an_answer_can_no_longer_be_changed_or_taken_back(api, settings):
    settings.FEEDBACK_CHANGE_MINUTES = 5
    stored = send(api, label=7).json()
    Sample.objects.update(created_at=timezone.now() - timedelta(minutes=5, seconds=1))
    response = api.patch(answer_url(stored["client_id"]), {"label": 1}, format="json")
    assert response.status_code == 409
    assert response.json()["message"] == "Too late: an answer can be changed for 5 minutes after it is saved."
    assert api.delete(answer_url(stored["client_id"])).status_code == 409
    assert Sample.objects.get().label == 7


def test_an_answer_a_reviewer_decided_on_cannot_be_changed(api):
    stored = send(api, label=7).json()
    sample_review(samples=Sample.objects.all(), status=Sample.Status.REJECTED)
    response = api.patch(answer_url(stored["client_id"]), {"label": 1}, format="json")
    assert response.status_code == 409 and "reviewer" in response.json()["message"]
    assert api.delete(answer_url(stored["client_id"])).status_code == 409


@pytest.mark.parametrize("label", [-1, 10, "seven", None, 3.5, True])
def test_changing_to_a_label_out_of_range_is_rejected(api, label):
    stored = send(api, label=7).json()
    response = api.patch(answer_url(stored["client_id"]), {"label": label}, format="json")
    assert response.status_code == 400
    assert "label" in response.json()["extra"]["fields"]
    assert Sample.objects.get().label == 7


def test_changing_answers_is_throttled_as_sending_them(api, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"feedback": "2/min", "predict": None})
    stored = send(api, label=7).json()
    assert api.patch(answer_url(stored["client_id"]), {"label": 1}, format="json").status_code == 200
    assert api.patch(answer_url(stored["client_id"]), {"label": 2}, format="json").status_code == 429
    assert api.delete(answer_url(stored["client_id"])).status_code == 429
    assert Sample.objects.get().label == 1


# -- taking an answer back, and the counts ------------------------------------------------------


def test_a_withdrawn_answer_is_gone_and_frees_its_place_under_the_daily_cap(api, settings):
    settings.FEEDBACK_PER_SOURCE_DAILY = 1
    stored = send(api, label=7).json()
    assert send(api, label=7).status_code == 429
    assert api.delete(answer_url(stored["client_id"])).status_code == 204
    assert Sample.objects.count() == 0
    assert api.delete(answer_url(stored["client_id"])).status_code == 404  # gone: nothing to take back twice
    assert send(api, label=1).status_code == 201


def test_changing_an_answer_is_not_a_new_sample_under_the_daily_cap(api, settings):
    settings.FEEDBACK_PER_SOURCE_DAILY = 1
    stored = send(api, label=7).json()
    assert api.patch(answer_url(stored["client_id"]), {"label": 1}, format="json").status_code == 200
    assert Sample.objects.count() == 1


def test_confirmations_changed_into_sure_corrections_of_one_pair_are_a_burst(api, settings):
    settings.BURST_PER_SOURCE = 3
    stored = [send(api, label=1).json() for _ in range(3)]  # confirmed 1s: no burst
    assert all(s["guess"] == 1 and s["confidence"] >= SURE_THRESHOLD and s["status"] == "new" for s in stored)
    answers = [api.patch(answer_url(s["client_id"]), {"label": 7}, format="json").json() for s in stored]
    assert [a["status"] for a in answers] == ["new", "new", "needs_review"]
    assert list(Sample.objects.values_list("status", flat=True)) == ["needs_review"] * 3


def test_a_burst_sample_changed_to_another_label_stays_on_hold(api, settings):
    settings.BURST_PER_SOURCE = 2
    stored = [send(api, label=7).json() for _ in range(2)]
    assert Sample.objects.filter(status="needs_review").count() == 2
    changed = api.patch(answer_url(stored[0]["client_id"]), {"label": 1}, format="json").json()
    assert changed["status"] == "needs_review"  # a change never lets a sample out of review


def test_a_changed_answer_counts_once_in_its_pair(api, settings):
    # A sample already of the pair, changed to it again, must not count as two of the burst.
    settings.BURST_PER_SOURCE = 2
    stored = send(api, label=7).json()
    assert api.patch(answer_url(stored["client_id"]), {"label": 4}, format="json").json()["status"] == "new"
    assert api.patch(answer_url(stored["client_id"]), {"label": 7}, format="json").json()["status"] == "new"


# -- not a digit ----------------------------------------------------------------------------------


def test_feedback_labelled_not_a_digit_is_stored_as_label_10(api):
    response = send(api, label="not_a_digit")
    assert response.status_code == 201, response.content
    assert response.json()["label"] == NOT_A_DIGIT and response.json()["is_correction"] is True
    sample = Sample.objects.get()
    assert sample.label == NOT_A_DIGIT and sample.guess == 1
    assert str(sample) == f"#{sample.pk}: not a digit (guessed 1)"


def test_an_answer_changed_to_not_a_digit_and_back(api):
    stored = send(api, label=1).json()
    assert api.patch(answer_url(stored["client_id"]), {"label": "not_a_digit"}, format="json").json()["label"] == NOT_A_DIGIT
    assert api.patch(answer_url(stored["client_id"]), {"label": 1}, format="json").json()["first_label"] == 1


def test_a_drawing_the_model_calls_not_a_digit_is_stored_with_guess_10(api, monkeypatch):
    # The served model cannot refuse a drawing yet; its answer's contract (digit None, reason
    # "not_a_digit", confidence the probability of not a digit) is put on the real reading.
    def refusing(**drawing):
        read = digit_predict(**drawing)
        return replace(read, digit=None, reason="not_a_digit", confidence=0.97)

    monkeypatch.setattr(services, "digit_predict", refusing)
    body = send(api, label="not_a_digit").json()
    assert (body["label"], body["guess"], body["confidence"], body["is_correction"]) == (NOT_A_DIGIT, NOT_A_DIGIT, 0.97, False)
    body = send(api, label=1).json()
    assert (body["label"], body["guess"]) == (1, NOT_A_DIGIT)


def test_the_export_names_not_a_digit_in_words(api):
    send(api, label="not_a_digit")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(sample_export_zip(samples=Sample.objects.all()))))
    [row] = csv.DictReader(io.TextIOWrapper(archive.open("samples.csv"), encoding="utf-8"))
    assert (row["label"], row["label_text"], row["guess_text"]) == ("10", "not a digit", "1")


def test_the_admin_shows_that_an_answer_was_changed_and_from_what(api, admin_client):
    stored = send(api, label=6).json()
    api.patch(answer_url(stored["client_id"]), {"label": "not_a_digit"}, format="json")
    listed = admin_client.get("/admin/feedback/sample/").content.decode()
    assert "not a digit ✗ guessed 1" in listed and "(changed from 6)" in listed
    page = admin_client.get(f"/admin/feedback/sample/{stored['id']}/change/").content.decode()
    assert "by its sender, from 6 to not a digit" in page
