"""The page in headless Chromium, drawn on with the mouse, against a live server."""

import numpy as np
import pytest
from playwright.sync_api import expect

from bench.browser import Pad, launch
from recognizer.tests.drawings import ONE_OR_SEVEN, strokes

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


def test_an_unsure_guess_shows_two_candidates_and_asks_for_the_right_digit(page):
    answer = Pad(page).draw(ONE_OR_SEVEN)
    assert answer["sure"] is False
    first, second = answer["top_two"]
    expect(page.locator("#guess")).to_have_text(f"Not sure: {first} or {second}?")
    # "Yes" would confirm one guess of two: the person picks the digit instead.
    expect(page.get_by_role("button", name="Yes, that's right")).to_be_disabled()
    expect(page.locator(".label.guessed")).to_have_count(2)
    expect(page.locator("#teach-status")).to_have_text("Which is it? Press the right digit to teach it.")


def test_the_page_sends_the_pens_strokes_not_a_bitmap(page):
    with page.expect_request(lambda r: r.url.endswith("/api/predict/")) as sent:
        Pad(page).draw(strokes(4, height=0.5))
    body = sent.value.post_data_json
    assert set(body) == {"strokes"}
    assert len(body["strokes"]) == len(strokes(4, height=0.5))


def test_a_multi_stroke_digit_is_guessed_after_the_last_stroke(page):
    answer = Pad(page).draw(strokes(4, height=0.5)[:1] + strokes(4, height=0.5)[1:])
    assert answer["digit"] == 4


def test_clear_empties_the_canvas_and_the_scores(page):
    pad = Pad(page)
    pad.draw(strokes(0))
    expect(page.locator(".score.top")).to_have_count(1)
    pad.clear()
    expect(page.locator("#guess")).to_have_text("Draw a digit")
    expect(page.locator(".score.top")).to_have_count(0)
    expect(page.locator("#sees")).to_be_hidden()
    blank = page.evaluate(
        "() => { const c = document.querySelector('canvas');"
        " return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.every(v => v === 0); }"
    )
    assert blank
    assert Pad(page).draw(strokes(1))["digit"] == 1  # and the next drawing starts afresh


def test_live_guesses_arrive_while_drawing_at_most_every_500_ms(page):
    # Record when the page calls the API, by the page's own clock.
    page.evaluate(
        """() => { window.predictCalls = []; const fetch = window.fetch;
        window.fetch = (url, options) => { if (String(url).endsWith('/api/predict/'))
            window.predictCalls.push(performance.now()); return fetch(url, options); }; }"""
    )
    pad = Pad(page)
    mouse = page.mouse
    mouse.move(*pad._to_page((200, 60)))
    mouse.down()
    for step in range(40):  # a slow stroke, 2 s or more
        mouse.move(*pad._to_page((200, 60 + step * 7)))
        page.wait_for_timeout(50)
    live = page.evaluate("window.predictCalls.length")
    with page.expect_request(lambda r: r.url.endswith("/api/predict/")):
        mouse.up()
    calls = page.evaluate("window.predictCalls")
    gaps = [b - a for a, b in zip(calls[: live - 1], calls[1:live])]
    assert live >= 3  # guesses while drawing, not only at the end (first at 500 ms)
    assert min(gaps) >= 450  # throttled to one per 500 ms (timers may fire a little early)
    assert len(calls) == live + 1  # and one more as soon as the pen lifts


def test_the_page_fits_a_phone_screen_and_drawing_with_a_finger_does_not_scroll_it(browser, live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(live_server.url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    assert page.evaluate("document.documentElement.scrollHeight") > 844  # so a drag *could* scroll
    box = page.locator("canvas").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390

    # A finger drags down the canvas: a "1". Real touch events, as a phone sends them.
    touch = context.new_cdp_session(page)
    x = box["x"] + box["width"] / 2
    points = [box["y"] + box["height"] * t / 20 for t in range(3, 18)]
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": points[0]}]})
    for y in points[1:]:
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    with page.expect_response("**/api/predict/", timeout=10_000) as answered:
        touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert answered.value.json()["digit"] == 1
    assert page.evaluate("window.scrollY") == 0
    context.close()
