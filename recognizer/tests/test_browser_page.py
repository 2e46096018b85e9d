"""The page's rough edges, mended: in headless Chromium against a live server, on a laptop
(1280x800, mouse) and a phone (390x844, touch)."""

import pytest
from playwright.sync_api import expect

from recognizer.tests.drawings import ONE_OR_SEVEN, strokes
from recognizer.tests.versions import publish
from testing.browser import Pad

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["page", "phone"])
def screen(request):
    return request.getfixturevalue(request.param)


def is_touch(screen) -> bool:
    return screen.evaluate("matchMedia('(pointer: coarse)').matches")


def press(screen, name: str):
    button = screen.get_by_role("button", name=name, exact=True)
    button.tap() if is_touch(screen) else button.click()


def tip(screen) -> str:
    if is_touch(screen):
        return "Tip: tap the right digit to correct a wrong guess."
    return "Tip: press a digit key to correct a wrong guess."


def test_the_saved_confirmation_is_in_view_without_scrolling(screen):
    Pad(screen).draw(strokes(7))
    press(screen, "1")
    status = screen.locator("#teach-status")
    expect(status).to_have_text("Saved: a 1, not a 7. The model will learn from it at its next training.")
    height = screen.viewport_size["height"]
    for shown in [status, screen.get_by_role("button", name="Take back"), screen.locator("#guess")]:
        box = shown.bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= height, shown
    assert screen.evaluate("window.scrollY") == 0


def test_a_saved_drawings_line_goes_when_the_drawing_is_cleared(screen, settings):
    settings.FEEDBACK_CHANGE_MINUTES = 0  # no taking back: Undo brings the drawing back as saved
    screen.reload()
    status = screen.locator("#teach-status")
    Pad(screen).draw(strokes(7))
    press(screen, "7")
    expect(status).to_have_text("Saved: a 7, guessed right. Thank you!")
    press(screen, "Undo")
    expect(status).to_have_text("This drawing is already saved. Clear it to draw the next digit.")
    press(screen, "Clear")
    expect(screen.locator("#guess")).to_have_text("Draw a digit")
    expect(status).to_have_text(tip(screen))


def test_which_is_it_goes_with_the_drawing_it_asks_about(screen):
    status = screen.locator("#teach-status")
    answer = Pad(screen).draw(ONE_OR_SEVEN)
    assert answer["sure"] is False
    expect(status).to_contain_text("Which is it?")
    press(screen, "Clear")
    expect(status).to_have_text(tip(screen))
    # Undo brings it back, and the question; taking its one stroke away leaves an empty canvas.
    press(screen, "Undo")
    expect(status).to_contain_text("Which is it?")
    press(screen, "Undo")
    expect(screen.locator("#guess")).to_have_text("Draw a digit")
    expect(status).to_have_text(tip(screen))
    # And Esc, on a keyboard.
    if not is_touch(screen):
        Pad(screen).draw(ONE_OR_SEVEN)
        expect(status).to_contain_text("Which is it?")
        screen.keyboard.press("Escape")
        expect(status).to_have_text(tip(screen))


def test_the_footer_follows_the_model_that_answers(screen):
    footer = screen.locator("#model-info")
    expect(footer).to_contain_text("Guessing now: model ")
    assert "20990101-new" not in footer.text_content()
    publish("20990101-new", seed=0)  # made active while the page is open
    answer = Pad(screen).draw(strokes(7))
    assert answer["model"] == "20990101-new"
    expect(footer).to_have_text("Guessing now: model 20990101-new, trained 1 January 2099.")


def test_favicon_ico_answers_with_the_pages_icon(screen, live_server):
    icon = screen.request.get(f"{live_server.url}/favicon.ico")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.url.endswith("/static/recognizer/favicon.svg")  # redirected to the one file
    linked = screen.locator("link[rel=icon]").get_attribute("href")
    assert screen.request.get(f"{live_server.url}{linked}").body() == icon.body()
