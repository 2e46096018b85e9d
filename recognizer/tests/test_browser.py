"""The page in headless Chromium, drawn on with the mouse, against a live server."""

import numpy as np
import pytest
from playwright.sync_api import expect

from recognizer.tests.drawings import EIGHT, ONE_OR_SEVEN, strokes
from testing.browser import Pad, is_predict_post

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_drawing_a_digit_with_the_mouse_shows_the_right_guess(page):
    answer = Pad(page).draw(strokes(7, centre=(0.45, 0.55), height=0.6))
    assert answer["digit"] == 7
    expect(page.locator("#guess")).to_have_text("It's a 7 ({}% sure)".format(round(answer["confidence"] * 100)))
    expect(page.locator(".score.top")).to_have_attribute("data-digit", "7")
    expect(page.locator(".score.top .score-value")).to_have_text(f"{round(answer['confidence'] * 100)}%")
    expect(page.locator("#sees")).to_be_visible()
    assert page.locator("#sees").evaluate("img => img.naturalWidth") == 28


@pytest.mark.parametrize("digit", [2, 7])
def test_a_digit_drawn_at_a_tenth_of_the_canvas_reads_right(page, digit):
    answer = Pad(page).draw(strokes(digit, centre=(0.25, 0.3), height=0.1))
    assert answer["digit"] == digit
    expect(page.locator("#guess")).to_contain_text(f"It's a {digit}")


def test_a_tap_is_too_small_to_read_and_gets_no_guess(page):
    answer = Pad(page).draw([np.array([[200.0, 200.0]])])
    assert answer["digit"] is None and answer["reason"] == "too_small"
    expect(page.locator("#guess")).to_have_text("Too small to read: draw bigger.")
    expect(page.locator(".score.top")).to_have_count(0)
    expect(page.get_by_role("group", name="The right digit").get_by_role("button").first).to_be_disabled()


def test_an_unsure_guess_shows_two_candidates_and_yes_confirms_the_first(page):
    answer = Pad(page).draw(ONE_OR_SEVEN)
    assert answer["sure"] is False
    first, second = answer["top_two"]
    expect(page.locator("#guess")).to_have_text(f"Not sure: {first} or {second}?")
    expect(page.locator(".label.guessed")).to_have_count(2)
    article = "an" if first == 8 else "a"
    expect(page.locator("#teach-status")).to_have_text(f"Which is it? Press “Yes” for {article} {first}, or the right digit's key.")
    # A top guess is shown, so "Yes" is offered: a confirmed unsure guess teaches as much as a correction.
    with page.expect_request("**/api/feedback/") as sent:
        page.get_by_role("button", name="Yes, that's right").click()
    assert sent.value.post_data_json["label"] == first
    expect(page.locator("#teach-status")).to_contain_text(f"Saved: {article} {first}.")


def test_the_page_sends_the_pens_strokes_not_a_bitmap(page):
    with page.expect_request(lambda r: r.url.endswith("/api/predict/")) as sent:
        Pad(page).draw(strokes(4, height=0.5))
    body = sent.value.post_data_json
    assert set(body) == {"strokes"}
    assert len(body["strokes"]) == len(strokes(4, height=0.5))


def test_a_multi_stroke_digit_is_guessed_after_the_last_stroke(page):
    answer = Pad(page).draw(strokes(4, height=0.5)[:1] + strokes(4, height=0.5)[1:])
    assert answer["digit"] == 4


def test_ctrl_z_removes_the_last_stroke_esc_clears_and_undo_brings_the_drawing_back(page):
    pad = Pad(page)
    four = strokes(4, height=0.5)
    assert len(four) == 1
    two_strokes = four + strokes(1, centre=(0.8, 0.5), height=0.5)
    pad.draw(two_strokes)
    expect(page.locator(".score.top")).to_have_count(1)
    # Ctrl+Z takes the last stroke away, on the canvas and in what the page sends.
    with page.expect_request(is_predict_post) as sent:
        page.keyboard.press("Control+z")
    assert len(sent.value.post_data_json["strokes"]) == 1
    assert sent.value.response().json()["digit"] == 4
    expect(page.locator("#guess")).to_contain_text("It's a 4")
    assert not pad.is_blank()
    # Esc clears the canvas and the scores.
    page.keyboard.press("Escape")
    expect(page.locator("#guess")).to_have_text("Draw a digit")
    expect(page.locator(".score.top")).to_have_count(0)
    expect(page.locator("#sees")).to_be_hidden()
    assert pad.is_blank()
    # Undo brings the cleared drawing back, as it was.
    with page.expect_request(is_predict_post) as sent:
        page.get_by_role("button", name="Undo").click()
    assert len(sent.value.post_data_json["strokes"]) == 1
    expect(page.locator("#guess")).to_contain_text("It's a 4")
    assert not pad.is_blank()
    # Undo again takes its one stroke away; with nothing left to undo, focus moves to the canvas.
    page.get_by_role("button", name="Undo").click()
    expect(page.locator("#guess")).to_have_text("Draw a digit")
    expect(page.get_by_role("button", name="Undo")).to_be_disabled()
    assert pad.is_blank() and page.evaluate("document.activeElement.id") == "pad"
    assert pad.draw(strokes(1))["digit"] == 1  # and the next drawing starts afresh


def test_live_guesses_arrive_while_drawing_and_only_the_settled_one_is_announced(page):
    # Record when the page calls the API, by the page's own clock, and all it announces.
    page.evaluate(
        """() => { window.predictCalls = []; const fetch = window.fetch;
        window.fetch = (url, options) => { if (String(url).endsWith('/api/predict/'))
            window.predictCalls.push(performance.now()); return fetch(url, options); };
        window.announced = []; const live = document.getElementById('announce');
        new MutationObserver(() => window.announced.push(live.textContent))
            .observe(live, {childList: true, characterData: true, subtree: true}); }"""
    )
    pad = Pad(page)
    mouse = page.mouse
    [eight] = EIGHT
    mouse.move(*pad._to_page(eight[0]))
    mouse.down()
    for point in eight[1:]:  # one slow stroke, 2 s or more
        mouse.move(*pad._to_page(point))
        page.wait_for_timeout(50)
    live = page.evaluate("window.predictCalls.length")
    with page.expect_request(is_predict_post) as sent:
        mouse.up()
    answer = sent.value.response().json()
    calls = page.evaluate("window.predictCalls")
    gaps = [b - a for a, b in zip(calls[: live - 1], calls[1:live])]
    assert live >= 3  # guesses while drawing, not only at the end (first at 500 ms)
    assert min(gaps) >= 450  # throttled to one per 500 ms (timers may fire a little early)
    assert len(calls) == live + 1  # and one more as soon as the pen lifts

    assert answer["digit"] == 8 and answer["sure"]
    settled = f"It's an 8 ({round(answer['confidence'] * 100)}% sure)"
    expect(page.locator("#guess")).to_have_text(settled)
    expect(page.get_by_role("status").filter(has_text="It's an")).to_have_text(settled)
    assert page.evaluate("window.announced") == [settled]  # not the 7 and 2 it looked like on the way

    # The canvas is in the accessibility tree, an image with its name.
    expect(page.get_by_role("img", name="Drawing area: draw one digit with mouse, pen or finger")).to_be_visible()
    assert 'img "Drawing area: draw one digit with mouse, pen or finger"' in page.locator("main").aria_snapshot()


def test_on_a_phone_the_correction_row_is_in_view_after_a_guess_and_a_finger_draws_without_scrolling(phone):
    page = phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    assert page.evaluate("document.documentElement.scrollHeight") > 844  # so a drag *could* scroll
    box = page.locator("canvas").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    expect(page.locator("#teach-status")).to_have_text("Tip: tap the right digit to correct a wrong guess.")

    # A finger drags down the canvas: a "1". Real touch events, as a phone sends them.
    touch = page.context.new_cdp_session(page)
    x = box["x"] + box["width"] / 2
    points = [box["y"] + box["height"] * t / 20 for t in range(3, 18)]
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": points[0]}]})
    for y in points[1:]:
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    with page.expect_response("**/api/predict/", timeout=10_000) as answered:
        touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert answered.value.json()["digit"] == 1
    assert page.evaluate("window.scrollY") == 0

    # Without scrolling: the guess, "Yes" and every digit button, each a fingertip's size.
    yes = page.get_by_role("button", name="Yes, that's right")
    expect(yes).to_be_enabled()
    targets = [yes, *page.get_by_role("group", name="The right digit").get_by_role("button").all()]
    targets += [page.get_by_role("button", name="Undo"), page.get_by_role("button", name="Clear")]
    for target in [page.locator("#guess"), *targets]:
        target_box = target.bounding_box()
        assert 0 <= target_box["y"] and target_box["y"] + target_box["height"] <= 844, target
    for target in targets:
        target_box = target.bounding_box()
        assert target_box["width"] >= 44 and target_box["height"] >= 44, target
    # The scores come after the correction row, compact: ten cells in one row.
    scores = page.locator(".scores").first.bounding_box()
    assert scores["y"] > targets[1].bounding_box()["y"] and scores["height"] < 80

    # A correction by tap: saved, and a fresh canvas for the next digit.
    page.get_by_role("group", name="The right digit").get_by_role("button", name="7").click()
    expect(page.locator("#teach-status")).to_contain_text("Saved: a 7")
    expect(page.locator("#guess")).to_have_text("Draw the next digit. (Undo brings this one back.)")
    assert Pad(page).is_blank()


@pytest.mark.parametrize("viewport", [{"width": 844, "height": 390}, {"width": 640, "height": 400}], ids=["landscape", "200% zoom"])
def test_the_canvas_and_the_guess_fit_the_viewports_height(phone, viewport):
    phone.set_viewport_size(viewport)
    canvas = phone.locator("canvas").bounding_box()
    guess = phone.locator("#guess").bounding_box()
    assert guess["y"] + guess["height"] - canvas["y"] <= viewport["height"]  # both in view at once
    assert canvas["x"] + canvas["width"] <= viewport["width"]
