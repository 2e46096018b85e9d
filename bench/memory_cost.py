"""What the memory of a person's own corrections (recognizer.memory, issue 40) costs a guess, in
this process: the CPU of POST /api/predict/ through the whole Django stack (Django's test
client, a fresh SQLite database), for the same misread pen digit from

- a stranger (no cookies), and a browser with a session and nothing remembered;
- a browser with 50 corrections of it (answered from the memory), and with 100 drawings that
  stood as well;
- that browser as the page sends what stood (draw.js: ten at a time with a guess, one guess in
  30), and with one more in every guess (every guess a write).

    python -m bench.memory_cost [--rounds 40] [--batch 30]

The cases are taken in turn, `--batch` guesses at a time, `--rounds` times: a shared machine's
load drifts by the minute, and batches taken in turn see the same drift. Prints each case's
CPU a guess, the least and the median batch, and its difference from the session with nothing
remembered: the least is the work itself, the median what a busy machine makes of it. Beside
bench.http_load --memory, which measures it through gunicorn, where the spread between sittings
is larger than the memory's cost.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

STOOD_BATCH = 10  # draw.js's STOOD_BATCH: one guess in 30 brings ten


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40, help="batches of each case, taken in turn (default 40)")
    parser.add_argument("--batch", type=int, default=30, help="guesses in a batch (default 30: the page's one sending of what stood in 30)")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="digitsite-memory-cost-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="digitsite.settings", DIGITSITE_VAR_DIR=folder, DIGITSITE_ALLOWED_HOSTS="testserver",
        DIGITSITE_PREDICT_RATE="none", DIGITSITE_FEEDBACK_RATE="none",
    )  # fmt: skip
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from bench.http_load import memory_teach, misread_drawing, with_stood

    call_command("migrate", verbosity=0)
    strokes, label = misread_drawing()
    guess = json.dumps({"strokes": strokes})

    def post(client: Client, path: str, body: dict | str) -> dict:
        answer = client.post(path, body if isinstance(body, str) else json.dumps(body), content_type="application/json")
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"{path} answered {answer.status_code}: {answer.content[:200]!r}")
        return answer.json()

    def browser(*, corrections: int, stood: int = 0) -> Client:
        """A browser that sent bench.http_load's steps to have a memory (memory_teach)."""
        client = Client()
        client.get("/")
        memory_teach(lambda path, body: post(client, path, body), corrections=corrections, strokes=strokes, label=label, stood=stood)
        return client

    remembering = browser(corrections=50, stood=100)
    cases = {
        "a stranger": (Client(), [guess]),
        "a session, nothing remembered": (browser(corrections=0), [guess]),
        "50 corrections": (browser(corrections=50), [guess]),
        "50 corrections and 100 that stood": (remembering, [guess]),
        f"the same, one guess in {3 * STOOD_BATCH} bringing {STOOD_BATCH} more (the page)": (
            remembering, [with_stood(strokes, STOOD_BATCH).decode()] + [guess] * (3 * STOOD_BATCH - 1),
        ),
        "the same, each guess bringing one more (every guess a write)": (remembering, [with_stood(strokes, 1).decode()]),
    }  # fmt: skip
    if post(cases["50 corrections"][0], "/api/predict/", guess)["reason"] != "your_correction":
        raise RuntimeError("the memory did not answer the sender with corrections")

    def batch(client: Client, bodies: list[str]) -> float:
        start = time.process_time()
        for i in range(args.batch):
            post(client, "/api/predict/", bodies[i % len(bodies)])
        return (time.process_time() - start) / args.batch * 1000

    for client, bodies in cases.values():
        batch(client, bodies)  # warm
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (client, bodies) in cases.items():
            runs[name].append(batch(client, bodies))
    base_least, base_median = min(runs["a session, nothing remembered"]), statistics.median(runs["a session, nothing remembered"])
    print(f"CPU a guess, {args.rounds} batches of {args.batch} a case, taken in turn (least / median batch; against a session with nothing remembered):")
    for name, figures in runs.items():
        least, median = min(figures), statistics.median(figures)
        print(f"  {name:70s} {least:.3f} / {median:.3f} ms  ({least - base_least:+.3f} / {median - base_median:+.3f} ms, "
              f"{least / base_least - 1:+.0%} / {median / base_median - 1:+.0%})")  # fmt: skip


if __name__ == "__main__":
    main()
