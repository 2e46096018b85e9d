"""How well the whole site reads real human drawing: pen-stroke digits replayed on the page.

Each of the 7,494 digits written by 30 people on a tablet (../shared/pendigits) is drawn with
the mouse onto the page's canvas in headless Chromium, at a seeded random size (8-80% of the
canvas height, in five size bands drawn evenly) and place; the score is the guess the page
itself gets back from /api/predict/. The page sends the pen's strokes; `--input image` makes it
send the canvas bitmap instead, as it did before strokes. Prints accuracy overall, per size band,
per digit and per writer, the top confusions and the time taken.

    python -m bench.pendigits                  # all 7,494 digits in the browser (about 55 minutes)
    python -m bench.pendigits --quick          # 2 of each digit from each writer: 600 digits
    python -m bench.pendigits --offline        # no browser: the same strokes, or the bitmap drawn with OpenCV
    python -m bench.pendigits --input image    # the page sends the bitmap, not the strokes

The server is started here with the active model (DIGITSITE_* variables pass through), unless
--url names a running one. --offline is for quick comparisons while developing: its figures
differ from the browser's by the canvas's own anti-aliasing.
"""

import argparse
import json
import os
import random
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from testing.pendigits_data import BAND_NAMES, DEFAULT_PATH, PenDigit, layout, load_digits, render, size_band, stratified_subset

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Result:
    index: int
    writer: int
    label: int
    guess: int | None
    model: str
    band: str  # the size band it was drawn in, "8-15%"
    sure: bool | None  # None: no guess (too small)

    @property
    def right(self) -> bool:
        return self.guess == self.label


def confirms(digit: PenDigit, *, seed: int, share: float) -> bool:
    """Whether the person confirms this drawing's right guess: a coin per drawing and seed, the
    same in the browser and offline, whatever order the drawings arrive in."""
    return random.Random(f"{seed}-{digit.index}").random() < share


def replay_in_browser(
    digits: list[PenDigit], *, url: str, seed: int, teach: bool = False, workers: int = 1, progress: bool = True, send: str = "strokes",
    confirm: float = 0.0,
) -> list[Result]:
    """Draw each digit on the page; with `teach`, correct each wrong guess the way a person
    would, by pressing the right digit key, and wait until the page has stored it; and confirm
    a `confirm` share of the right guesses (a coin per drawing), with "Yes" where the page
    offers it and with the digit's key where it named two.

    Chromium delivers one mouse move per frame (60 a second), as a real mouse does, so one page
    is slow but idle; `workers` pages, each in its own browser and process, share the digits.
    """
    if workers <= 1:
        return _replay_on_one_page(digits, url=url, seed=seed, teach=teach, progress=progress, send=send, confirm=confirm)
    chunks = [digits[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        futures = [
            pool.submit(_replay_on_one_page, chunk, url=url, seed=seed, teach=teach, progress=progress and i == 0, send=send, confirm=confirm)
            for i, chunk in enumerate(chunks)
        ]
        results = [result for future in futures for result in future.result()]
    order = {digit.index: n for n, digit in enumerate(digits)}
    return sorted(results, key=lambda r: order[r.index])


def _replay_on_one_page(digits: list[PenDigit], *, url: str, seed: int, teach: bool, progress: bool, send: str, confirm: float) -> list[Result]:
    from playwright.sync_api import expect, sync_playwright

    from testing.browser import Pad, launch

    results = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url + ("?send=image" if send == "image" else ""))
        pad = Pad(page)
        for number, digit in enumerate(digits, 1):
            answer = pad.draw(layout(digit, seed))
            result = Result(
                digit.index, digit.writer, digit.label, answer["digit"], answer["model"], size_band(digit, seed), answer["sure"]
            )
            results.append(result)
            confirming = result.right and confirms(digit, seed=seed, share=confirm)
            if teach and result.guess is not None and (not result.right or confirming):
                # A person answers the guess they see: the key does nothing until the page shows it.
                expect(page.get_by_role("group", name="The right digit").get_by_role("button").first).to_be_enabled()
                with page.expect_response("**/api/feedback/") as saved:
                    if confirming and result.sure:
                        page.get_by_role("button", name="Yes, that's right").click()
                    else:
                        page.keyboard.press(str(digit.label))
                if saved.value.status != 201:
                    raise RuntimeError(f"the page could not store a drawing: {saved.value.text()}")
            pad.clear()
            if progress and number % 250 == 0:
                print(f"  {number}/{len(digits)} on the first page: {_share(results):.2%} right so far", flush=True)
        browser.close()
    return results


def replay_offline(digits: list[PenDigit], *, seed: int, send: str = "strokes") -> list[Result]:
    """The same layout read by the same service without a browser: the strokes themselves, or
    the bitmap the page's canvas would make, drawn with OpenCV."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    from recognizer.preprocessing import to_png
    from recognizer.services import digit_predict

    results = []
    for digit in digits:
        strokes = layout(digit, seed)
        drawing = {"strokes": strokes} if send == "strokes" else {"image": to_png(render(strokes))}
        prediction = digit_predict(**drawing)
        results.append(
            Result(digit.index, digit.writer, digit.label, prediction.digit, prediction.model, size_band(digit, seed), prediction.sure)
        )
    return results


def _share(results: list[Result]) -> float:
    return sum(r.right for r in results) / max(1, len(results))


def summary(results: list[Result], seconds: float) -> dict:
    by_digit = {d: _share([r for r in results if r.label == d]) for d in range(10)}
    by_band = {band: _share([r for r in results if r.band == band]) for band in BAND_NAMES if any(r.band == band for r in results)}
    unsure = [r for r in results if r.sure is False]
    by_writer = {w: _share([r for r in results if r.writer == w]) for w in sorted({r.writer for r in results})}
    confusions = Counter((r.label, r.guess) for r in results if not r.right)
    return {
        "count": len(results),
        "accuracy": _share(results),
        "errors": len(results) - sum(r.right for r in results),
        "per_band": by_band,
        "unsure": len(unsure),
        "unsure_right_among_top_guess": sum(r.right for r in unsure),
        "per_digit": by_digit,
        "per_writer": by_writer,
        "confusions": [[label, guess, n] for (label, guess), n in confusions.most_common(10)],
        "models": sorted({r.model for r in results}),
        "seconds": round(seconds, 1),
    }


def report(figures: dict, title: str) -> str:
    lines = [
        f"{title}: {figures['accuracy']:.2%} of {figures['count']} digits right "
        f"({figures['errors']} wrong), model {', '.join(figures['models'])}, {figures['seconds']:.0f} s",
        "per size band (digit height, share of the canvas): " + "  ".join(f"{b}: {a:.2%}" for b, a in figures["per_band"].items()),
        f"not sure: {figures['unsure']} of {figures['count']} ({figures['unsure'] / max(1, figures['count']):.1%}); "
        f"of those, the top guess was right {figures['unsure_right_among_top_guess']}",
        "per digit:  " + "  ".join(f"{d}: {a:.1%}" for d, a in figures["per_digit"].items()),
        "per writer: " + "  ".join(f"{w}: {a:.1%}" for w, a in figures["per_writer"].items()),
        "worst writers: " + ", ".join(f"{w} ({a:.1%})" for w, a in sorted(figures["per_writer"].items(), key=lambda x: x[1])[:5]),
        "top confusions (true -> guess: count): "
        + ", ".join(f"{label}->{guess}: {n}" for label, guess, n in figures["confusions"]),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="same as --per-writer-digit 2 (600 digits)")
    parser.add_argument("--per-writer-digit", type=int, default=None, help="a stratified subset: N of each digit per writer (default: all digits)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sizes, places and the subset (default: 0)")
    parser.add_argument("--offline", action="store_true", help="no browser: read the strokes, or the bitmap drawn with OpenCV (default: browser)")
    parser.add_argument("--input", choices=["strokes", "image"], default="strokes", help="what the page sends the server (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=4, help="browser pages drawing at once (default: %(default)s)")
    parser.add_argument("--url", default=None, help="a running site to measure (default: start one here)")
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH, help=f"the pendigits file (default: {DEFAULT_PATH})")
    parser.add_argument("--out", type=Path, default=None, help="write figures and every guess as JSON here (default: bench/results/)")
    args = parser.parse_args()

    digits = load_digits(args.data)
    per = 2 if args.quick else args.per_writer_digit
    if per:
        digits = stratified_subset(digits, per, args.seed)
    started = time.perf_counter()
    if args.offline:
        results, mode = replay_offline(digits, seed=args.seed, send=args.input), "offline"
    elif args.url:
        results, mode = replay_in_browser(digits, url=args.url, seed=args.seed, workers=args.workers, send=args.input), "browser"
    else:
        from testing.server import running_server

        with running_server() as url:
            results, mode = replay_in_browser(digits, url=url, seed=args.seed, workers=args.workers, send=args.input), "browser"
    figures = summary(results, time.perf_counter() - started)
    print(report(figures, f"pendigits, {mode}, {args.input}, seed {args.seed}"))

    out = args.out or RESULTS / f"pendigits-{mode}-{args.input}-{len(results)}-seed{args.seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"mode": mode, "input": args.input, "seed": args.seed, **figures, "results": [asdict(r) for r in results]}, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
