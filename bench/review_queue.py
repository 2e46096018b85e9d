"""The admin's review queue, driven with the keyboard in headless Chromium as a reviewer would.

A fresh site (its own var/ folder, `runserver`) gets real pen-digit corrections (the pen guard
set's drawings, shipped with the code) sent through
feedback.services as the API stores them, so bursts are held as they would be: a poisoner's
sure 1 -> 7s from one source, the same pair from many sources, and honest writers' corrections.
A reviewer's keys then decide `--decisions` of them (approve, reject, relabel, in a fixed
pattern), each key pressed as soon as the page shows the next drawing.

    python -m bench.review_queue [--corrections 120] [--decisions 100]

Prints the seconds per decision as driven (key press to the next drawing, from Playwright) and
the page's own work per decision (key press to the next drawing painted, measured in the page
with performance.now()), and checks that every decision reached the database.
"""

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from contextlib import contextmanager

from playwright.sync_api import sync_playwright

from testing.browser import launch
from testing.server import ROOT, running_server

REVIEW = "/admin/feedback/sample/review/"
KEYS = ["a", "a", "r", "a", "3", "a", "r", "a", "7", "a"]  # mostly approvals, some rejections and relabels
RESULTS = ROOT / "bench" / "results"


def _source(name: str) -> str:
    return f"anon:{name.encode().hex()[:32]:0<32}"


def fill(*, corrections: int, seed: int) -> dict[str, int]:
    """Store `corrections` corrections of real pen digits through the services, as the API does:
    a third a poisoner's 1s labelled 7 from one source (held as a burst past 10), a sixth the same
    pair from many sources, the rest honest writers' corrections, 4 a writer."""
    from feedback.models import Sample
    from feedback.services import sample_create
    from recognizer.pen_digits import pen_digits_strokes

    rng = random.Random(seed)
    drawings, labels = pen_digits_strokes()
    order = rng.sample(range(len(drawings)), len(drawings))
    ones = [n for n in order if labels[n] == 1]
    others = [n for n in order if labels[n] != 1]
    plan = [(ones.pop(), 7, _source("poisoner")) for _ in range(corrections // 3)]
    plan += [(ones.pop(), 7, _source(f"script-{n}")) for n in range(corrections // 6)]
    writer = 0
    while len(plan) < corrections * 2:  # some will be read as the label itself and not count
        n = others.pop()
        plan.append((n, (int(labels[n]) + rng.randint(1, 9)) % 10, _source(f"writer-{writer // 4}")))
        writer += 1
    stored = 0
    for n, label, source in plan:
        if stored == corrections:
            break
        sample = sample_create(label=label, strokes=drawings[n], source=source)
        if sample.is_correction:
            stored += 1
        else:
            sample.delete()  # read as its label: a confirmation, not a correction to review
    statuses = Sample.objects.values_list("status", flat=True)
    return {status: list(statuses).count(status) for status in set(statuses)}


@contextmanager
def filled_site(*, corrections: int, seed: int = 0):
    """Yield (base URL, a superuser's session id, the statuses stored) of a fresh site holding
    `corrections` corrections."""
    with tempfile.TemporaryDirectory() as var:
        os.environ["DIGITSITE_VAR_DIR"] = var  # the server and this process share the database
        with running_server() as url:
            import django

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
            django.setup()  # after the server's migrate made the secret key both sign sessions with
            from django.contrib.auth.models import User
            from django.test import Client

            statuses = fill(corrections=corrections, seed=seed)
            client = Client()
            client.force_login(User.objects.create_superuser("reviewer", "reviewer@example.com", "a-long-password-42"))
            yield url, client.cookies["sessionid"].value, statuses


def open_queue(browser, url: str, session: str, **options):
    context = browser.new_context(**options)
    context.add_cookies([{"name": "sessionid", "value": session, "url": url}])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    started = time.perf_counter()
    page.goto(f"{url}{REVIEW}")
    page.locator("#drawing-box img").wait_for()
    return context, page, time.perf_counter() - started, errors


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corrections", type=int, default=120, help="corrections in the queue (default: %(default)s)")
    parser.add_argument("--decisions", type=int, default=100, help="decisions to make (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # Playwright's sync API runs an event loop in this thread; Django would take the database
    # calls made beside it for calls from async code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with filled_site(corrections=args.corrections, seed=args.seed) as (url, session, statuses), sync_playwright() as playwright:
        from feedback.models import Sample

        print(f"stored {args.corrections} corrections: {statuses}")
        browser = launch(playwright)
        context, page, first, errors = open_queue(browser, url, session, viewport={"width": 1280, "height": 800})
        walls = []
        started = time.perf_counter()
        for number in range(args.decisions):
            key = KEYS[number % len(KEYS)]
            before = time.perf_counter()
            page.keyboard.press(key)
            page.wait_for_function("n => window.reviewTimings.length > n", arg=number, polling=1)
            walls.append(time.perf_counter() - before)
        total = time.perf_counter() - started
        work = page.evaluate("window.reviewTimings")
        deadline = time.monotonic() + 30
        while (decided := Sample.objects.filter(status__in=["approved", "rejected"]).count()) < args.decisions:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        context.close()
        browser.close()

    figures = {
        "corrections": args.corrections,
        "decisions": args.decisions,
        "stored_decisions": decided,
        "first_drawing_s": round(first, 3),
        "total_s": round(total, 2),
        "s_per_decision": round(total / args.decisions, 4),
        "wall_ms_median": round(statistics.median(walls) * 1000, 1),
        "wall_ms_max": round(max(walls) * 1000, 1),
        "page_ms_median": round(statistics.median(work), 1),
        "page_ms_p95": round(percentile(work, 0.95), 1),
        "page_ms_max": round(max(work), 1),
        "page_errors": [str(error) for error in errors],
    }
    print(f"first drawing shown {first:.2f} s after the page was asked for")
    print(f"{args.decisions} decisions by key in {total:.1f} s: {total / args.decisions:.3f} s a decision "
          f"(key press to the next drawing, as driven: median {figures['wall_ms_median']} ms, max {figures['wall_ms_max']} ms)")
    print(f"the page's own work a decision: median {figures['page_ms_median']} ms, p95 {figures['page_ms_p95']} ms, "
          f"max {figures['page_ms_max']} ms (key press to the next drawing painted, performance.now())")
    print(f"decisions stored: {decided} of {args.decisions}; page errors: {len(errors)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "review_queue.json").write_text(json.dumps(figures, indent=2))
    if decided != args.decisions or errors:
        raise SystemExit("not every decision was stored, or the page raised")


if __name__ == "__main__":
    main()
