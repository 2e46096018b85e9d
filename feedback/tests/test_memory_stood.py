"""Drawings whose answer the person let stand (recognizer.memory, issue 40): once a sender has a
correction remembered, the page sends them back, and a later drawing like one of them is
answered with its digit, for that sender alone. The real shipped model reads real pen digits."""

import functools
import uuid

import numpy as np
import pytest
from rest_framework.test import APIClient

from feedback.tests.test_memory import FEEDBACK, PREDICT, _misread, browser, correct, guess, moved, two_web_processes
from recognizer.fields import MAX_STOOD
from recognizer.memory import PLAUSIBLE_BESIDE_STOOD, REASON, REASON_STOOD
from recognizer.models import RememberedCorrection
from recognizer.pen_digits import pen_digits_strokes
from recognizer.services import digit_predict


@pytest.fixture
def drawings(db):
    """The misread pen digit (strokes, the net's guess, its true label), the input_image it is
    answered with, and another pen digit with a label to correct it with that the net finds
    implausible for the first (so that this correction never answers it)."""
    return _drawings()


@functools.cache
def _drawings():
    strokes, net_guess, label, _ = _misread()
    seen = digit_predict(strokes=strokes)
    for other, _ in zip(*pen_digits_strokes()):
        answer = digit_predict(strokes=other)
        if answer.digit is None or answer.digit in (net_guess, label):
            continue
        unlikely = [k for k in range(10) if k != answer.digit and seen.probabilities[k] < PLAUSIBLE_BESIDE_STOOD]
        if unlikely:
            image = APIClient().post(PREDICT, {"strokes": strokes}, format="json").json()["input_image"]
            return strokes, net_guess, label, image, [s.tolist() for s in other], unlikely[0]
    raise AssertionError("the pen guard set has no such drawing")


def correction_with(client: APIClient, strokes, label: int, stood: list[dict]) -> dict:
    body = {"strokes": strokes, "label": label, "client_id": str(uuid.uuid4()), "stood": stood}
    response = client.post(FEEDBACK, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def guess_with(client: APIClient, strokes, stood: list[dict]):
    return client.post(PREDICT, {"strokes": strokes, "stood": stood}, format="json")


def test_a_drawing_like_one_that_stood_is_answered_with_its_digit_for_that_session_alone(drawings):
    strokes, net_guess, label, image, other, other_label = drawings
    me, someone_else = browser(), browser()
    correct(me, other, other_label)
    assert guess_with(me, other, [{"image": image, "digit": label}]).status_code == 200
    mine = guess(me, moved(strokes))
    assert (mine["digit"], mine["reason"], mine["correction"], mine["hint"]) == (label, REASON_STOOD, None, "Like one you drew before.")
    theirs = guess(someone_else, moved(strokes))
    assert (theirs["digit"], theirs["reason"]) == (net_guess, None)


def test_a_correction_carries_the_drawings_that_stood_before_it(drawings):
    strokes, _, label, image, other, other_label = drawings
    me = browser()
    correction_with(me, other, other_label, [{"image": image, "digit": label}])
    assert RememberedCorrection.objects.filter(sample_id__isnull=True, label=label).count() == 1
    assert (guess(me, moved(strokes))["digit"], guess(me, moved(strokes))["reason"]) == (label, REASON_STOOD)


def test_drawings_that_stood_are_not_remembered_without_a_correction(drawings):
    strokes, net_guess, label, image, other, _ = drawings
    me = browser()
    assert guess_with(me, other, [{"image": image, "digit": label}]).status_code == 200  # no session yet: a stranger
    correction_with(me, other, digit_predict(strokes=[np.asarray(s) for s in other]).digit, [{"image": image, "digit": label}])  # a confirmation
    assert not RememberedCorrection.objects.exists()
    assert guess(me, moved(strokes))["digit"] == net_guess


def test_a_correction_of_a_drawing_sent_as_one_that_stood_replaces_it(drawings):
    strokes, net_guess, label, image, other, other_label = drawings
    me = browser()
    correction_with(me, other, other_label, [{"image": image, "digit": net_guess}])
    assert guess(me, moved(strokes))["digit"] == net_guess
    stored = correct(me, strokes, label)  # Undo brought it back, and the person corrected it after all
    assert not RememberedCorrection.objects.filter(sample_id__isnull=True).exists()
    assert (guess(me, moved(strokes))["digit"], guess(me, moved(strokes))["correction"]) == (label, stored["id"])


def test_the_memory_keeps_a_sources_newest_drawings_that_stood(drawings, settings):
    strokes, _, label, image, other, other_label = drawings
    settings.MEMORY_STOOD = 2
    me = browser()
    correct(me, other, other_label)
    for digit in (label, (label + 1) % 10, (label + 2) % 10):
        guess_with(me, other, [{"image": image, "digit": digit}])
    kept = RememberedCorrection.objects.filter(sample_id__isnull=True).order_by("id").values_list("label", flat=True)
    assert list(kept) == [(label + 1) % 10, (label + 2) % 10]
    assert RememberedCorrection.objects.filter(sample_id__isnull=False).count() == 1  # the correction stays


def test_the_switch_turns_the_drawings_that_stood_off(drawings, settings):
    strokes, net_guess, label, image, other, other_label = drawings
    settings.MEMORY_STOOD = 0
    me = browser()
    correction_with(me, other, other_label, [{"image": image, "digit": label}])
    assert not RememberedCorrection.objects.filter(sample_id__isnull=True).exists()
    assert guess(me, moved(strokes))["digit"] == net_guess


@pytest.mark.parametrize(
    "stood, wrong",
    [
        ([{"image": "data:image/png;base64,iVBORw0KGgo=", "digit": 3}], "image"),  # not a 28x28 PNG
        ([{"digit": 3}], "image"),
        ([{"image": None, "digit": 11}], "image"),
        ("a string", "non_field_errors"),
    ],
)
def test_a_drawing_that_stood_that_is_not_an_answers_input_image_is_rejected(drawings, stood, wrong):
    _, _, _, _, other, _ = drawings
    for path in (PREDICT, FEEDBACK):
        body = {"strokes": other, "stood": stood, "label": 3}
        response = browser().post(path, body, format="json")
        assert response.status_code == 400, response.content
        assert "stood" in response.json()["extra"]["fields"] or "stood" in str(response.json()), response.json()


def test_more_drawings_that_stood_than_the_page_keeps_are_rejected(drawings):
    _, _, label, image, other, _ = drawings
    response = guess_with(browser(), other, [{"image": image, "digit": label}] * (MAX_STOOD + 1))
    assert response.status_code == 400 and "stood" in str(response.json())
    assert not RememberedCorrection.objects.exists()


def test_a_digit_that_stood_out_of_range_is_rejected(drawings):
    _, _, _, image, other, _ = drawings
    response = guess_with(browser(), other, [{"image": image, "digit": 10}])
    assert response.status_code == 400 and "digit" in str(response.json())


def test_the_reason_for_a_correction_is_unchanged_beside_drawings_that_stood(drawings):
    strokes, _, label, image, _, _ = drawings
    me = browser()
    stored = correction_with(me, strokes, label, [{"image": image, "digit": label}])  # the same drawing: dropped
    mine = guess(me, moved(strokes))
    assert (mine["digit"], mine["reason"], mine["correction"]) == (label, REASON, stored["id"])


@pytest.mark.django_db(transaction=True)
def test_two_web_processes_on_one_database_answer_alike_from_one_senders_drawings_that_stood(tmp_path):
    strokes, net_guess, label, image, other, other_label = _drawings()
    with two_web_processes(tmp_path) as (first, second, mine, strangers):
        mine(first, "/api/feedback/", {"strokes": other, "label": other_label, "client_id": str(uuid.uuid4())})
        mine(second, "/api/predict/", {"strokes": other, "stood": [{"image": image, "digit": label}]})
        answers = [mine(url, "/api/predict/", {"strokes": moved(strokes)}) for url in (first, second)]
        assert [(a["digit"], a["reason"], a["correction"]) for a in answers] == [(label, REASON_STOOD, None)] * 2
        assert strangers(first, "/api/predict/", {"strokes": moved(strokes)})["digit"] == net_guess
