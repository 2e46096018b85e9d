"""Make the screenshots in docs/: a real pen-stroke digit drawn on the page, with its guess, on a
laptop's screen (1280x800) and on a phone (390x844, touch; the whole screen, as it first shows),
and on the laptop once more after "Yes, that's right": the saved answer's line, with Take back.
The server runs on a fresh database of its own, so the shipped model answers, as on a fresh clone.
With --review, the admin's review queue instead, filled with pen-digit corrections as
bench.review_queue fills it, at both sizes: one correction big, and the grid on the laptop.

    python -m bench.screenshot [--index 6] [--out docs]
    python -m bench.screenshot --letter Latin/11/17 [--out docs]   # a held-out writer's handwritten k: screenshot-letter.png
    python -m bench.screenshot --review [--out docs]
"""

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from testing.browser import Pad, launch
from testing.pendigits_data import layout, load_digits
from testing.server import ROOT, running_server

SCREENS = {
    "screenshot.png": {"viewport": {"width": 1280, "height": 800}},
    "screenshot-phone.png": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2},
    "screenshot-saved.png": {"viewport": {"width": 1280, "height": 800}},
}
ANSWERED = {"screenshot-saved.png"}  # the guess confirmed before the picture is taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=int, default=6, help="which pen-stroke digit to draw (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="the folder for the images (default: docs)")
    parser.add_argument("--review", action="store_true", help="the admin's review queue instead of the page")
    parser.add_argument("--letter", default=None, help="instead, an Omniglot drawing, alphabet/character/drawer (training.nn.omniglot), on the laptop")
    args = parser.parse_args()
    if args.review:
        review_screenshots(args.out)
        return
    if args.letter:
        letter_screenshot(args.letter, args.out)
        return

    digit = load_digits()[args.index]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, running_server({"DATABASE_URL": "", "DIGITSITE_DB_PATH": f"{folder}/db.sqlite3"}) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        for name, options in SCREENS.items():
            context = browser.new_context(**options)
            page = context.new_page()
            page.goto(url)
            answer = Pad(page).draw(layout(digit, seed=0))
            # The page renders the answer a moment after it arrives.
            page.wait_for_function("() => !document.querySelector('[aria-busy=\"true\"]')")
            page.wait_for_timeout(400)  # the bars and highlight glide for 0.2 s (style.css)
            if name in ANSWERED:
                page.get_by_role("button", name="Yes, that's right").click()
                page.get_by_role("button", name="Take back").wait_for()
                page.wait_for_timeout(400)  # the cleared bars glide back to nothing
            # A phone shows what fits its screen; a laptop's page is shown whole.
            page.screenshot(path=str(args.out / name), full_page=not options.get("is_mobile"))
            context.close()
            print(f"drew a {digit.label}, the page guessed {answer['digit']} ({answer['confidence']:.0%}); saved {args.out / name}")
        browser.close()


REVIEW_SCREENS = {
    "review-queue.png": ({"viewport": {"width": 1280, "height": 800}}, "one"),
    "review-queue-grid.png": ({"viewport": {"width": 1280, "height": 800}}, "grid"),
    "review-queue-phone.png": (SCREENS["screenshot-phone.png"], "one"),
}


def letter_screenshot(which: str, out: Path) -> None:
    """A real handwritten character, laid out as bench.refusal measures it, drawn on the laptop's page."""
    from training.nn.omniglot import HELD_OUT_SEED, omniglot_drawings
    from training.nn.omniglot import layout as letter_layout

    alphabet, character, drawer = which.split("/")
    drawing = next(d for d in omniglot_drawings() if (d.alphabet, d.character, d.drawer) == (alphabet, int(character), int(drawer)))
    with tempfile.TemporaryDirectory() as folder, running_server({"DATABASE_URL": "", "DIGITSITE_DB_PATH": f"{folder}/db.sqlite3"}) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(**SCREENS["screenshot.png"])
        page = context.new_page()
        page.goto(url)
        answer = Pad(page).draw(letter_layout(drawing, seed=HELD_OUT_SEED))
        page.wait_for_function("() => !document.querySelector('[aria-busy=\"true\"]')")
        page.wait_for_timeout(400)
        page.screenshot(path=str(out / "screenshot-letter.png"), full_page=True)
        print(f"drew {which} (held out: {drawing.held_out}); the page answered {answer['digit']} {answer.get('reason')} ({answer['confidence']:.0%}); saved {out / 'screenshot-letter.png'}")
        browser.close()


def review_screenshots(out: Path) -> None:
    import os

    from bench.review_queue import filled_site, open_queue

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Django calls beside Playwright's event loop
    out.mkdir(parents=True, exist_ok=True)
    with filled_site(corrections=120) as (url, session, _), sync_playwright() as playwright:
        browser = launch(playwright)
        for name, (options, mode) in REVIEW_SCREENS.items():
            context, page, _, errors = open_queue(browser, url, session, **options)
            page.keyboard.press("s")  # past the first, so Back and the status line show too
            if mode == "grid":
                page.keyboard.press("g")
                page.locator("#review-grid img").first.wait_for()
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / name), full_page=False)
            context.close()
            assert not errors, errors
            print(f"saved {out / name}")
        browser.close()


if __name__ == "__main__":
    main()
