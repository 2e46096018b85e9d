"""The runs list, a working run's time left and the quality page in headless Chromium, on a
1280x800 laptop screen and a 390x844 touch phone."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from feedback.tests.factories import SampleFactory
from training.models import TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-42"
OLD, NEW = "20261128-164514-8335", "20261206-041728-2083"
SCREENS = ["page", "phone"]  # conftest's 1280x800 laptop and 390x844 touch phone


def logged_in(page, live_server, path: str):
    from django.contrib.auth.models import User

    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    page.goto(f"{live_server.url}/admin/login/?next={path}")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    return page


def runs() -> TrainingRun:
    """A promoted run, a candidate and a working one, with figures as long as real ones; returns the working one."""
    TrainingRun.objects.create(
        status="promoted", epochs=2, seconds=161.43, base_version=OLD, model_version=NEW, corrections_held_out=37, confirmed_held_out=1_204,
        mnist_accuracy_before=0.9954, mnist_accuracy=0.9956, corrections_accuracy_before=3 / 37, corrections_accuracy=21 / 37,
        confirmed_accuracy_before=0.99834, confirmed_accuracy=0.99751, finished_at=timezone.now(),
    )  # fmt: skip
    TrainingRun.objects.create(
        status="candidate", epochs=2, seconds=158.9, base_version=NEW, model_version="20261206-051212-9a1c", corrections_held_out=40,
        mnist_accuracy_before=0.9956, mnist_accuracy=0.9931, corrections_accuracy_before=0.5, corrections_accuracy=0.5, finished_at=timezone.now(),
    )  # fmt: skip
    return TrainingRun.objects.create(
        status="running", in_progress=True, epochs=2, base_version=NEW, progress="epoch 1 of 2: step 120 of 412",
        finish_expected_at=timezone.now() + timedelta(seconds=130),
    )  # fmt: skip


@pytest.mark.parametrize("screen", SCREENS)
def test_the_runs_list_fits_the_screen_with_every_column_and_the_time_a_working_run_has_left(request, live_server, screen):
    runs()
    page = logged_in(request.getfixturevalue(screen), live_server, "/admin/training/trainingrun/")
    width = page.viewport_size["width"]
    expect(page.locator("#result_list")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    if screen == "page":  # a laptop shows every column at once, without scrolling the list's box
        assert page.locator(".results").evaluate("box => box.scrollWidth <= box.clientWidth")
        for column in ["run_number", "status_now", "time_text", "model_link", "mnist_figures", "corrections_figures", "confirmed_figures"]:
            box = page.locator(f"#result_list th.column-{column}").bounding_box()
            assert box["x"] + box["width"] <= width, column
    expect(page.locator("#result_list")).to_contain_text("about 2 min left")
    expect(page.locator("#result_list")).to_contain_text("3 → 21 of 37")
    expect(page.locator("#result_list")).to_contain_text("99.54% → 99.56%")
    expect(page.get_by_role("link", name="Model quality")).to_be_visible()


@pytest.mark.parametrize("screen", SCREENS)
def test_a_working_runs_page_shows_the_time_it_has_left(request, live_server, screen):
    working = runs()
    page = logged_in(request.getfixturevalue(screen), live_server, f"/admin/training/trainingrun/{working.pk}/change/")
    time_row = page.locator(".field-time_taken")
    expect(time_row).to_contain_text("about 2 min left")
    expect(time_row).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


@pytest.mark.parametrize("screen", SCREENS)
def test_the_quality_page_compares_a_model_with_the_one_its_run_fine_tuned(request, live_server, screen):
    runs()
    for version, pairs in ((OLD, [(1, 7)] * 3 + [(7, 7)] * 20 + [(4, 9)] * 2), (NEW, [(1, 7)] + [(7, 7)] * 22 + [(4, 4)] * 5)):
        for guess, label in pairs:
            SampleFactory(model_version=version, guess=guess, label=label, confidence=0.99)
    page = logged_in(request.getfixturevalue(screen), live_server, "/admin/training/trainingrun/")
    page.get_by_role("link", name="Model quality").click()
    expect(page.locator("#quality-list")).to_contain_text("20.0% → 3.6%")  # corrected: 5 of 25, then 1 of 28
    page.get_by_role("link", name=NEW).first.click()
    expect(page.get_by_role("heading", name=f"Model {NEW}: how the users answered")).to_be_visible()
    expect(page.locator("#quality-summary")).to_contain_text("5 (20.0%)")
    expect(page.locator("#quality-digits")).to_contain_text("3 of 3")  # the old model's 1s: all corrected
    images = page.get_by_role("img", name="corrections of")
    expect(images).to_have_count(2)
    assert images.first.evaluate("img => img.complete && img.naturalWidth > 200")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    summary = page.locator("#quality-summary").bounding_box()
    assert summary["x"] + summary["width"] <= page.viewport_size["width"]
