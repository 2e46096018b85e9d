"""Correcting the model on the page, in headless Chromium, against a live server."""

import numpy as np
import pytest
from playwright.sync_api import expect

from feedback.models import Sample
from recognizer.tests.drawings import strokes
from testing.browser import Pad

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
    # The next digit starts on a fresh canvas; a key press does not store the old drawing twice.
    expect(page.locator("#guess")).to_have_text("Draw the next digit. (Undo brings this one back.)")
    assert Pad(page).is_blank()
    page.keyboard.press("3")
    page.wait_for_timeout(300)
    assert Sample.objects.count() == 1
    # Undo brings the saved drawing back, still saved: a digit now changes its answer (for a few
    # minutes: feedback/tests/test_browser_answers.py) rather than storing it again.
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#teach-status")).to_have_text("Saved as an 8. Press another answer to change it, or take it back.")
    assert not Pad(page).is_blank()
    page.keyboard.press("8")
    expect(page.locator("#teach-status")).to_have_text("Kept: an 8.")
    assert Sample.objects.count() == 1


def test_past_the_senders_daily_limit_a_correction_is_refused_in_words_and_not_sent_again(page, settings):
    settings.FEEDBACK_PER_SOURCE_DAILY = 1
    sent = []
    page.on("request", lambda request: sent.append(request) if request.url.endswith("/api/feedback/") else None)
    Pad(page).draw(EASTERN_ARABIC_EIGHT)
    with page.expect_response("**/api/feedback/") as saved:
        page.keyboard.press("8")
    assert saved.value.status == 201
    Pad(page).draw(EASTERN_ARABIC_EIGHT)
    with page.expect_response("**/api/feedback/") as refused:
        page.keyboard.press("8")
    assert refused.value.status == 429
    expect(page.locator("#teach-status")).to_have_text(
        "Not saved: Daily limit reached: at most 1 corrections from one sender in 24 hours. Try again later."
    )
    page.wait_for_timeout(1500)  # the busy server's first retry would come within a second
    assert len(sent) == 2 and Sample.objects.count() == 1


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
    # The pressed button is disabled for the next drawing; focus goes to the canvas, not the body.
    assert page.evaluate("document.activeElement.id") == "pad"


def outbox(page) -> list:
    return page.evaluate("JSON.parse(localStorage.getItem('digitsite.corrections') || '[]')")


def test_with_the_server_down_guesses_are_retried_and_a_correction_is_kept_until_stored_once(page):
    pad = Pad(page)
    guess = page.locator("#guess")
    status = page.locator("#teach-status")
    page.route("**/api/predict/", lambda route: route.abort())
    pad.trace(strokes(7))
    expect(guess).to_have_text("Can't reach the server. Check your connection. Trying again…")
    page.unroute("**/api/predict/")
    expect(guess).to_contain_text("It's a 7")  # the retry, a second later

    page.route("**/api/feedback/", lambda route: route.abort())
    page.keyboard.press("1")
    expect(status).to_have_text(
        "Not saved yet: Can't reach the server. Check your connection. "
        "Your correction is kept on this device and sent as soon as the server answers."
    )
    assert len(outbox(page)) == 1 and Sample.objects.count() == 0

    # The server is back, but its first answer is lost on the way: it stored the correction,
    # and the page, not knowing, sends it again.
    answers = []

    def store_and_lose_the_first_answer(route):
        if answers:
            route.continue_()
            return
        answers.append(route.fetch().status)
        route.abort()

    page.unroute("**/api/feedback/")
    page.route("**/api/feedback/", store_and_lose_the_first_answer)
    expect(status).to_have_text(
        "Saved (it was kept while offline): a 1, not a 7. The model will learn from it at its next training.", timeout=15_000
    )
    assert answers == [201]
    assert Sample.objects.count() == 1 and Sample.objects.get().label == 1
    assert outbox(page) == []

    # A correction refused for good is not kept: the page says why and gives the drawing back.
    page.unroute("**/api/feedback/")
    page.route("**/api/feedback/", lambda route: route.fulfill(status=400, json={"message": "the drawing is too small to read: draw the digit bigger"}))
    pad.draw(strokes(7))
    page.keyboard.press("2")
    expect(status).to_have_text("Not saved: the drawing is too small to read: draw the digit bigger")
    expect(guess).to_contain_text("It's a 7")  # the drawing is back, guessed again...
    expect(status).to_have_text("Not saved: the drawing is too small to read: draw the digit bigger")  # ...and why stays
    expect(digit_buttons(page).first).to_be_enabled()
    assert not pad.is_blank() and outbox(page) == [] and Sample.objects.count() == 1


def test_the_sample_list_fits_a_1280_px_screen_without_cutting_columns(page, live_server):
    from django.contrib.auth.models import User

    from feedback.tests.factories import SampleFactory

    User.objects.create_superuser("admin", "admin@example.com", "a-long-password-42")
    for guess, label in [(1, 7), (7, 7), (0, 6)]:
        SampleFactory(guess=guess, label=label, model_version="20261128-085951-5d1e")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/feedback/sample/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("a-long-password-42")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#result_list")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    # The list's own box scrolls sideways when it is too wide: it must not need to.
    assert page.locator(".results").evaluate("box => box.scrollWidth <= box.clientWidth")
    for heading in ["Label (guess)", "Model version", "Created"]:
        box = page.get_by_role("columnheader", name=heading).bounding_box()
        assert box["x"] + box["width"] <= 1280, heading
    expect(page.get_by_role("link", name="wrong: corrections only")).to_be_visible()
