"""Correcting the model on the page, in headless Chromium, against a live server."""

import numpy as np
import pytest
from playwright.sync_api import expect

from bench.browser import Pad
from feedback.models import Sample
from recognizer.tests.drawings import strokes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EASTERN_ARABIC_EIGHT = [np.array([(110.0, 320.0), (200.0, 90.0), (290.0, 320.0)])]  # ٨, read as a 1


def digit_buttons(page):
    return page.get_by_role("group", name="The right digit").get_by_role("button")


def test_correcting_a_wrong_guess_with_a_digit_key_stores_the_sample_with_its_strokes(page):
    answer = Pad(page).draw(EASTERN_ARABIC_EIGHT)
    assert answer["digit"] != 8
    expect(digit_buttons(page).first).to_be_enabled()
    with page.expect_response("**/api/feedback/") as saved:
        page.keyboard.press("8")
    assert saved.value.status == 201
    guessed = f", not {'an' if answer['digit'] == 8 else 'a'} {answer['digit']}" if answer["sure"] else ""
    expect(page.locator("#teach-status")).to_have_text(
        f"Saved: an 8{guessed}. The model will learn from it at its next training."
    )
    sample = Sample.objects.get()
    assert (sample.label, sample.guess, sample.model_version) == (8, answer["digit"], answer["model"])
    # The pen's path is kept, point for point as drawn (the page keeps a tenth of a pixel).
    assert len(sample.strokes) == 1
    assert np.abs(np.array(sample.strokes[0])[[0, -1]] - EASTERN_ARABIC_EIGHT[0][[0, -1]]).max() <= 1
    # One drawing, one sample: another key press does not store it twice.
    page.keyboard.press("3")
    page.wait_for_timeout(300)
    assert Sample.objects.count() == 1


def test_confirming_a_right_guess_with_the_button_stores_a_positive_sample(page):
    answer = Pad(page).draw(strokes(2, height=0.5))
    assert answer["digit"] == 2
    page.get_by_role("button", name="Yes, that's right").click()
    expect(page.locator("#teach-status")).to_have_text("Saved: a 2, guessed right. Thank you!")
    assert Sample.objects.get().label == Sample.objects.get().guess == 2


def test_correction_buttons_wait_for_a_guess(page):
    expect(page.get_by_role("button", name="Yes, that's right")).to_be_disabled()
    page.keyboard.press("5")
    page.wait_for_timeout(300)
    assert Sample.objects.count() == 0
    Pad(page).draw(strokes(7))
    page.get_by_role("group", name="The right digit").get_by_role("button", name="1").click()
    expect(page.locator("#teach-status")).to_contain_text("Saved: a 1, not a 7")
    assert Sample.objects.get().label == 1
