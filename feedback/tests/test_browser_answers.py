"""Taking back or changing the page's last answer, and the "not a digit" answer, in headless
Chromium against a live server, on a laptop (1280x800, mouse) and a phone (390x844, touch)."""

import re

import numpy as np
import pytest
from playwright.sync_api import expect

from feedback.models import Sample
from recognizer.labels import NOT_A_DIGIT
from recognizer.tests.drawings import strokes
from testing.browser import Pad

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = ["page", "phone"]  # conftest's fixtures: 1280x800 with a mouse, 390x844 touch


@pytest.fixture(params=SCREENS)
def screen(request):
    return request.getfixturevalue(request.param)


def press(screen, name: str):
    """A button, clicked with the mouse or tapped with a finger as the screen has."""
    button = screen.get_by_role("button", name=name, exact=True)
    button.tap() if is_touch(screen) else button.click()


def is_touch(screen) -> bool:
    return screen.evaluate("matchMedia('(pointer: coarse)').matches")


def in_view(screen, locator) -> bool:
    box = locator.bounding_box()
    height = screen.viewport_size["height"]
    return box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height


def answer_seven_as_one(screen) -> dict:
    answer = Pad(screen).draw(strokes(7))
    assert answer["digit"] == 7 and answer["sure"]
    with screen.expect_response("**/api/feedback/") as saved:
        press(screen, "1")
    assert saved.value.status == 201
    expect(screen.locator("#teach-status")).to_have_text("Saved: a 1, not a 7. The model will learn from it at its next training.")
    return saved.value.json()


def test_take_back_deletes_the_answer_and_brings_the_drawing_back_to_answer_again(screen):
    stored = answer_seven_as_one(screen)
    take_back = screen.get_by_role("button", name="Take back")
    expect(take_back).to_be_visible()
    assert in_view(screen, take_back) and screen.evaluate("window.scrollY") == 0
    with screen.expect_response(f"**/api/feedback/{stored['client_id']}/") as withdrawn:
        press(screen, "Take back")
    assert withdrawn.value.status == 204 and withdrawn.value.request.method == "DELETE"
    expect(screen.locator("#teach-status")).to_have_text("Taken back: a 1 is not saved. Answer again, or clear the drawing.")
    assert Sample.objects.count() == 0
    expect(screen.locator("#guess")).to_contain_text("It's a 7")  # the drawing is back, read again
    assert not Pad(screen).is_blank()
    expect(take_back).to_be_hidden()
    # Answered afresh: a new sample, with a new client_id.
    with screen.expect_response("**/api/feedback/") as saved:
        press(screen, "7")
    assert saved.value.status == 201 and saved.value.json()["client_id"] != stored["client_id"]
    expect(screen.locator("#teach-status")).to_have_text("Saved: a 7, guessed right. Thank you!")
    assert list(Sample.objects.values_list("label", flat=True)) == [7]


def test_undo_brings_the_saved_drawing_back_and_another_digit_changes_the_answer(screen):
    stored = answer_seven_as_one(screen)
    press(screen, "Undo")
    expect(screen.locator("#teach-status")).to_have_text("Saved as a 1. Press another answer to change it, or take it back.")
    expect(screen.get_by_role("button", name="7", exact=True)).to_be_enabled()  # not disabled, as it was
    with screen.expect_response(f"**/api/feedback/{stored['client_id']}/") as changed:
        press(screen, "7")
    assert changed.value.status == 200 and changed.value.request.method == "PATCH"
    expect(screen.locator("#teach-status")).to_have_text("Changed: a 7, guessed right. Thank you!")
    sample = Sample.objects.get()
    assert (sample.label, sample.first_label, sample.client_id.hex) == (7, 1, stored["client_id"].replace("-", ""))
    assert Pad(screen).is_blank()  # on to the next digit, as after any answer
    expect(screen.get_by_role("button", name="Take back")).to_be_visible()


def test_after_the_window_the_answer_can_no_longer_be_changed(screen, settings):
    settings.FEEDBACK_CHANGE_MINUTES = 0.1  # 6 s; the page offers 5 s less: 1 s
    screen.reload()
    answer_seven_as_one(screen)
    expect(screen.get_by_role("button", name="Take back")).to_be_hidden(timeout=3000)
    press(screen, "Undo")
    expect(screen.locator("#teach-status")).to_have_text("This drawing is already saved. Clear it to draw the next digit.")
    expect(screen.get_by_role("button", name="7", exact=True)).to_be_disabled()
    assert Sample.objects.get().label == 1


def refuse_every_drawing(screen):
    """/api/predict/ answers with the "not a digit" contract, on the real model's reading (the
    served model cannot refuse yet). The feedback side stays real."""

    def answer(route):
        read = route.fetch().json()
        if read["digit"] is not None:
            read.update(digit=None, reason="not_a_digit", hint="That doesn't look like a digit.", confidence=0.93, not_a_digit=0.93, sure=False)
        route.fulfill(json=read)

    screen.route("**/api/predict/", answer)


def test_a_drawing_read_as_not_a_digit_says_so_offers_the_digits_and_not_a_digit_is_stored_as_10(screen):
    refuse_every_drawing(screen)
    answer = Pad(screen).draw(strokes(4, height=0.5))
    assert answer["reason"] == "not_a_digit"
    expect(screen.locator("#guess")).to_have_text("That doesn't look like a digit.")
    assert in_view(screen, screen.locator("#guess"))
    expect(screen.get_by_role("button", name="4", exact=True)).to_be_enabled()  # the digits are still offered
    expect(screen.get_by_role("button", name="Yes, that's right")).to_be_enabled()  # agrees: not a digit
    not_digit = screen.get_by_role("button", name="Not a digit")
    expect(not_digit).to_be_enabled()
    expect(not_digit).to_have_class("not-digit guessed")
    touch = is_touch(screen)
    expect(screen.locator("#teach-status")).to_have_text(
        "Tap “Not a digit” to agree, or the right digit if it is one." if touch else "Press N to agree it's not a digit, or the right digit if it is one."
    )
    with screen.expect_request("**/api/feedback/") as sent:
        screen.keyboard.press("n") if not touch else press(screen, "Not a digit")
    assert sent.value.post_data_json["label"] == "not_a_digit"
    expect(screen.locator("#teach-status")).to_have_text("Saved: not a digit, as the model said. Thank you!")
    sample = Sample.objects.get()
    assert (sample.label, sample.guess) == (NOT_A_DIGIT, 4)  # the server's own guess, from the real model


def test_a_digit_answered_not_a_digit_and_a_refused_drawing_answered_with_a_digit(screen):
    Pad(screen).draw(strokes(7))
    press(screen, "Not a digit")
    expect(screen.locator("#teach-status")).to_have_text("Saved: not a digit, not a 7. The model will learn from it at its next training.")
    refuse_every_drawing(screen)
    Pad(screen).draw(strokes(2, height=0.5))
    press(screen, "2")
    expect(screen.locator("#teach-status")).to_have_text("Saved: a 2. The model will learn from it at its next training.")
    assert sorted(Sample.objects.values_list("label", "guess")) == [(2, 2), (NOT_A_DIGIT, 7)]


def test_a_correction_kept_offline_says_so_when_stored_and_the_next_guess_does_not_hide_it(screen):
    Pad(screen).draw(strokes(7))
    screen.route("**/api/feedback/", lambda route: route.abort())
    press(screen, "1")
    expect(screen.locator("#teach-status")).to_contain_text("Not saved yet: Can't reach the server.")
    screen.unroute("**/api/feedback/")
    # The next drawing's guess reaches the server: the kept correction goes with it.
    Pad(screen).draw(strokes(2, height=0.5))
    kept = "Saved (it was kept while offline): a 1, not a 7. The model will learn from it at its next training."
    expect(screen.locator("#teach-status")).to_have_text(kept)
    assert Sample.objects.get().label == 1
    Pad(screen).draw(strokes(1, centre=(0.8, 0.5), height=0.5))  # another stroke, another guess
    screen.wait_for_timeout(300)
    expect(screen.locator("#teach-status")).to_have_text(kept)  # not the tip


def test_an_answer_still_kept_on_the_device_is_changed_there_and_stored_once_as_changed(screen):
    Pad(screen).draw(strokes(7))
    screen.route("**/api/feedback/", lambda route: route.abort())
    press(screen, "1")
    expect(screen.locator("#teach-status")).to_contain_text("Not saved yet: Can't reach the server.")
    press(screen, "Undo")
    expect(screen.locator("#teach-status")).to_have_text("Kept (not sent yet) as a 1. Press another answer to change it, or take it back.")
    press(screen, "7")
    expect(screen.locator("#teach-status")).to_have_text("Changed (not sent yet): a 7, guessed right. Thank you!")
    screen.unroute("**/api/feedback/")
    Pad(screen).draw(strokes(2, height=0.5))  # the server answers again: the kept answer is sent
    expect(screen.locator("#teach-status")).to_have_text("Saved (it was kept while offline): a 7, guessed right. Thank you!")
    sample = Sample.objects.get()
    assert (sample.label, sample.first_label) == (7, None)  # the server only ever heard the 7


def test_an_answer_still_kept_on_the_device_is_taken_back_there_and_never_sent(screen):
    sent = []
    Pad(screen).draw(strokes(7))
    screen.route("**/api/feedback/", lambda route: (sent.append(route.request.method), route.abort()))
    press(screen, "1")
    expect(screen.locator("#teach-status")).to_contain_text("Not saved yet: Can't reach the server.")
    press(screen, "Undo")
    press(screen, "Take back")
    expect(screen.locator("#teach-status")).to_have_text("Taken back: a 1 is not saved. Answer again, or clear the drawing.")
    assert screen.evaluate("localStorage.getItem('digitsite.corrections')") is None
    tries = len(sent)  # the page's retries so far, each refused
    screen.unroute("**/api/feedback/")
    screen.wait_for_timeout(2500)  # past the next retry
    assert len(sent) == tries and set(sent) == {"POST"}  # nothing more sent; no DELETE needed
    assert Sample.objects.count() == 0


def test_clearing_the_pad_after_taking_back_leaves_no_word_about_the_answer(screen):
    answer_seven_as_one(screen)
    press(screen, "Take back")
    expect(screen.locator("#teach-status")).to_have_text("Taken back: a 1 is not saved. Answer again, or clear the drawing.")
    press(screen, "Clear")
    expect(screen.locator("#teach-status")).to_have_text(re.compile(r"^Tip: "))  # a laptop's or a phone's
    expect(screen.locator("#guess")).to_have_text("Draw a digit")


def test_a_drawing_like_one_just_corrected_is_answered_with_the_correction_in_words(screen):
    from feedback.tests.test_memory import _misread, moved

    drawn, net_guess, label, _ = _misread()
    pad = Pad(screen)
    assert pad.draw([np.array(stroke) for stroke in drawn])["digit"] == net_guess
    with screen.expect_response("**/api/feedback/") as saved:
        press(screen, str(label))
    assert saved.value.status == 201
    press(screen, "Clear")
    answer = pad.draw([np.array(stroke) for stroke in moved(drawn)])
    assert (answer["digit"], answer["reason"]) == (label, "your_correction")
    expect(screen.locator("#guess")).to_have_text(f"{label} — like the one you corrected")


def test_after_an_answer_the_footers_links_are_in_view_on_a_laptop(page):
    answer_seven_as_one(page)  # a guess, then an answer, its words and Take back
    for name in ("API", "Model details (JSON)", "Review corrections"):
        assert in_view(page, page.get_by_role("link", name=name)), name
    assert page.evaluate("window.scrollY") == 0


def test_drawings_that_stood_go_with_the_first_correction_and_then_ten_at_a_time_with_a_guess(screen):
    from feedback.tests.test_memory import _misread
    from recognizer.models import RememberedCorrection

    drawn, net_guess, label, _ = _misread()
    sent = []  # (path, the body's stood digits) of every request the page sends
    screen.on("request", lambda r: r.method == "POST" and "/api/" in r.url and sent.append((r.url.split("/api/")[1], [s["digit"] for s in (r.post_data_json or {}).get("stood", [])])))
    pad = Pad(screen)
    assert pad.draw(strokes(7))["digit"] == 7
    press(screen, "Clear")  # a 7 the person let stand: held on the page, nothing remembered yet
    assert pad.draw([np.array(stroke) for stroke in drawn])["digit"] == net_guess
    assert all(not digits for _, digits in sent)
    with screen.expect_response("**/api/feedback/") as saved:
        press(screen, str(label))
    assert saved.value.status == 201 and [s["digit"] for s in saved.value.request.post_data_json["stood"]] == [7]
    assert list(RememberedCorrection.objects.filter(sample_id__isnull=True).values_list("label", flat=True)) == [7]
    for _ in range(10):
        assert pad.draw(strokes(7))["digit"] == 7
        press(screen, "Clear")
    assert all(not digits for path, digits in sent if path == "predict/")  # held until there are ten
    pad.draw(strokes(1))
    assert [digits for path, digits in sent if path == "predict/" and digits] == [[7] * 10]  # sent once, with a guess
    assert RememberedCorrection.objects.filter(sample_id__isnull=True).count() == 11
