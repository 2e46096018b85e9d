"""Make the README's screenshot: a real pen-stroke digit drawn on the page, with its guess.

    python -m bench.screenshot [--index 6] [--out docs/screenshot.png]
"""

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.browser import Pad, launch
from bench.pendigits_data import layout, load_digits
from bench.server import ROOT, running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=int, default=6, help="which pen-stroke digit to draw (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png", help="the image (default: docs/screenshot.png)")
    args = parser.parse_args()

    digit = load_digits()[args.index]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with running_server() as url, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        page.goto(url)
        answer = Pad(page).draw(layout(digit, seed=0))
        # The page renders the answer a moment after it arrives.
        page.wait_for_function("() => !document.querySelector('[aria-busy=\"true\"]')")
        page.wait_for_timeout(400)  # the bars and highlight glide for 0.2 s (style.css)
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"drew a {digit.label}, the page guessed {answer['digit']} ({answer['confidence']:.0%}); saved {args.out}")


if __name__ == "__main__":
    main()
