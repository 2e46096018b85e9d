"""The review queue in headless Chromium against a live server: keys on a laptop, buttons on a phone."""

import time

import numpy as np
import pytest
from django.test import Client
from playwright.sync_api import expect

from feedback.models import Sample
from feedback.tests.factories import SampleFactory, staff_user
from recognizer.preprocessing import to_png

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REVIEW = "/admin/feedback/sample/review/"
TALL_ONE = to_png(np.pad(np.zeros((260, 12), np.uint8), 20, constant_values=255))  # a thin vertical 1, cropped


def sign_in(page, live_server) -> None:
    """Open the queue as a staff reviewer (change_sample only, not a superuser)."""
    client = Client()
    client.force_login(staff_user(username="reviewer", permissions=["feedback.view_sample", "feedback.change_sample"]))
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page.goto(f"{live_server.url}{REVIEW}")


def eventually(condition, timeout=5.0) -> None:
    """Decisions are sent in the background: wait for the database to show them."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the decision did not reach the database"
        time.sleep(0.05)


def status(sample) -> tuple[str, int]:
    fresh = Sample.objects.get(pk=sample.pk)
    return fresh.status, fresh.label


def shows(page, sample) -> None:
    expect(page.locator("#sample-facts")).to_contain_text(f"#{sample.pk} ·")


@pytest.fixture
def queue(db):
    """A burst of sure 1 -> 7 corrections from one source (first in the queue), then two plain ones."""
    burst = [
        SampleFactory(guess=1, label=7, confidence=0.999, source="anon:burst", status=Sample.Status.NEEDS_REVIEW, drawing=TALL_ONE)
        for _ in range(3)
    ]
    plain = [SampleFactory(guess=guess, label=label, confidence=0.6, source="anon:plain") for guess, label in [(3, 5), (0, 6)]]
    return burst, plain


def test_the_queue_walks_with_keys_and_stores_each_decision(page, live_server, queue):
    burst, plain = queue
    sign_in(page, live_server)
    expect(page.locator("#review-progress")).to_have_text("1 of 5 · 0 decided")
    expect(page.locator("#group-title")).to_have_text("Group 1 of 3: 1 → 7, from anon:burst")
    expect(page.locator("#group-why")).to_contain_text("3 held as a burst; the model was sure of 3 of 3")
    shows(page, burst[0])
    # The drawing keeps its aspect: a tall 1 is drawn tall inside its square box, not stretched.
    drawing = page.locator("#drawing-box img")
    assert drawing.evaluate("img => [img.naturalWidth, img.naturalHeight, getComputedStyle(img).objectFit]") == [52, 300, "contain"]
    expect(page.locator("#input-box img")).to_be_visible()

    page.keyboard.press("a")
    shows(page, burst[1])
    page.keyboard.press("r")
    shows(page, burst[2])
    page.keyboard.press("1")
    shows(page, plain[0])
    eventually(lambda: [status(s) for s in burst] == [("approved", 7), ("rejected", 7), ("approved", 1)])

    # Back undoes the last decision and shows that drawing again; deciding again is stored after the undo.
    page.keyboard.press("u")
    shows(page, burst[2])
    eventually(lambda: status(burst[2]) == ("needs_review", 7))
    page.keyboard.press("r")
    shows(page, plain[0])
    page.keyboard.press("s")  # skip: no decision
    shows(page, plain[1])
    page.keyboard.press("a")
    expect(page.locator("#review-progress")).to_have_text("Queue done: 4 of 5 decided")
    eventually(lambda: [status(s) for s in [*burst, *plain]] == [("approved", 7), ("rejected", 7), ("rejected", 7), ("new", 5), ("approved", 6)])
    # The page timed its own work for each key: five decisions, a Back and a skip.
    assert len(page.evaluate("window.reviewTimings")) == 7


def test_a_whole_group_is_rejected_after_a_confirmation_by_key(page, live_server, queue):
    burst, plain = queue
    sign_in(page, live_server)
    shows(page, burst[0])
    page.keyboard.press("Shift+R")
    expect(page.locator("#group-confirm-text")).to_have_text("Reject all 3 waiting corrections 1 → 7 from anon:burst?")
    page.keyboard.press("Escape")  # cancelled: nothing changes
    expect(page.locator("#group-confirm")).to_be_hidden()
    page.keyboard.press("Shift+R")
    page.keyboard.press("Enter")
    shows(page, plain[0])
    expect(page.locator("#review-status")).to_have_text("Rejected 3 corrections of group 1.")
    assert {status(s) for s in burst} == {("rejected", 7)}
    assert {status(s)[0] for s in plain} == {"new"}


def test_on_a_phone_the_queue_walks_with_buttons_and_a_group_is_approved_from_the_grid(phone, live_server, queue):
    burst, plain = queue
    sign_in(phone, live_server)
    shows(phone, burst[0])
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    # The decision buttons are in view without scrolling, and big enough for a finger.
    # No keyboard on a phone, so the buttons do not name keys.
    for name in ["Approve", "Reject"]:
        button = phone.get_by_role("button", name=name, exact=True)
        box = button.bounding_box()
        assert box["height"] >= 44 and box["y"] + box["height"] <= 844, name
    phone.get_by_role("button", name="Approve", exact=True).tap()
    shows(phone, burst[1])
    phone.get_by_role("group", name="Relabel as").get_by_role("button", name="4", exact=True).tap()
    shows(phone, burst[2])
    phone.get_by_role("button", name="Back").tap()
    shows(phone, burst[1])
    phone.get_by_role("button", name="Reject", exact=True).tap()
    eventually(lambda: [status(s) for s in burst[:2]] == [("approved", 7), ("rejected", 7)])

    # The grid shows the group's drawings; the current one is marked.
    phone.get_by_role("button", name="Grid").tap()
    tiles = phone.locator("#review-grid .review-tile")
    expect(tiles).to_have_count(3)
    expect(phone.locator("#review-grid .review-tile.current")).to_contain_text(f"#{burst[2].pk}")
    phone.get_by_role("button", name="Approve group (1)").tap()
    phone.get_by_role("button", name="Yes, approve 1").tap()
    shows(phone, plain[0])
    expect(tiles).to_have_count(1)  # the next group's
    assert status(burst[2]) == ("approved", 7)
    assert {status(s)[0] for s in plain} == {"new"}
