"""Does the site learn from its users? The feedback loop measured end to end, in a browser.

1. Each writer's pen-stroke digits are split in two halves (stratified by digit, seeded).
2. The second half is drawn on the page: accuracy before.
3. The first half is drawn on the page, and each wrong guess is corrected there the way a user
   would, by pressing the right digit key; the page stores it through /api/feedback/.
4. `manage.py train_digits` retrains on MNIST plus those corrections (its defaults: fine-tune
   the active model, hold out 20% of corrections, promotion gate on MNIST test and on the
   held-out corrections).
5. The running server picks up the new model by itself; the second half is drawn again:
   accuracy after. MNIST test before and after come from the training run.

Everything happens in a fresh database and model folder (the shipped model starts active).

    python -m bench.feedback_loop [--quick] [--epochs N] [--train-args "--holdout 0.1"]
"""

import argparse
import json
import random
import shlex
import sqlite3
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.pendigits import replay_in_browser, report, summary
from testing.pendigits_data import PenDigit, load_digits, stratified_subset
from testing.server import manage, running_server


def halves(digits: list[PenDigit], seed: int) -> tuple[list[PenDigit], list[PenDigit]]:
    """Half of each writer's digits of each kind to teach with, the other half to test on."""
    rng = random.Random(seed)
    groups: dict[tuple[int, int], list[PenDigit]] = {}
    for digit in digits:
        groups.setdefault((digit.writer, digit.label), []).append(digit)
    teach, test = [], []
    for key in sorted(groups):
        group = groups[key][:]
        rng.shuffle(group)
        teach += group[: len(group) // 2]
        test += group[len(group) // 2 :]
    return sorted(teach, key=lambda d: d.index), sorted(test, key=lambda d: d.index)


def serving_what_is_active(url: str, database: Path, limit_s: float = 60) -> None:
    """Wait until the server answers with the model the run left active (it looks at most once
    a second, and a new model takes it a moment to load): the test half must be read by it alone."""
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT version FROM recognizer_modelversion WHERE active").fetchone()
    if row is None:
        return  # the shipped model is still active
    started = time.monotonic()
    while json.loads(urllib.request.urlopen(f"{url}/api/health/", timeout=10).read())["model"]["version"] != row[0]:
        if time.monotonic() - started > limit_s:
            raise RuntimeError(f"the server did not serve {row[0]} within {limit_s:.0f} s")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 of each digit per writer instead of all (2,400 digits)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the halves and the layout (default: 0)")
    parser.add_argument("--epochs", type=int, default=None, help="train_digits --epochs (default: the command's own default)")
    parser.add_argument("--train-args", default="", help='more train_digits flags, e.g. "--holdout 0.1" (default: none)')
    parser.add_argument(
        "--confirm", type=float, default=0.0,
        help='share of the right guesses on the teaching half that the user confirms ("Yes"; default: 0, only wrong guesses are answered)',
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=4, help="browser pages drawing at once (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the fresh database and models go (default: a temporary folder)")
    args = parser.parse_args()

    digits = load_digits()
    if args.quick:
        digits = stratified_subset(digits, 8, args.seed)
    teach, test = halves(digits, args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="digitsite-feedback-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"DIGITSITE_DB_PATH": str(workdir / "db.sqlite3"), "DIGITSITE_MODEL_DIR": str(workdir / "models")}
    print(f"{len(teach)} digits to teach with, {len(test)} to test on; working in {workdir}", flush=True)

    started = time.perf_counter()
    with running_server(env) as url:
        before = replay_in_browser(test, url=url, seed=args.seed, workers=args.workers)
        print(report(summary(before, time.perf_counter() - started), "test half, before"), flush=True)

        taught = replay_in_browser(teach, url=url, seed=args.seed, teach=True, workers=args.workers, confirm=args.confirm)
        corrections = sum(not r.right for r in taught)
        print(report(summary(taught, time.perf_counter() - started), "teaching half, as drawn"))
        print(f"{corrections} corrections stored through the page" + (" (and the confirmed right guesses)" if args.confirm else ""), flush=True)

        epochs = ["--epochs", str(args.epochs)] if args.epochs else []
        manage("train_digits", *epochs, "--no-progress", *shlex.split(args.train_args), env=env)
        serving_what_is_active(url, workdir / "db.sqlite3")

        after = replay_in_browser(test, url=url, seed=args.seed, workers=args.workers)
        print(report(summary(after, time.perf_counter() - started), "test half, after"))

    with sqlite3.connect(workdir / "db.sqlite3") as db:
        run = db.execute(
            "SELECT status, model_version, mnist_accuracy_before, mnist_accuracy, users_samples, corrections_held_out, "
            "corrections_accuracy_before, corrections_accuracy FROM training_trainingrun ORDER BY id DESC LIMIT 1"
        ).fetchone()
        stored = db.execute("SELECT COUNT(*) FROM feedback_sample WHERE label != guess").fetchone()[0]
        confirmed = db.execute("SELECT COUNT(*) FROM feedback_sample WHERE label = guess").fetchone()[0]
    status, version, mnist_before, mnist_after, trained_on, held_out, fb_before, fb_after = run
    error_before = 1 - summary(before, 0)["accuracy"]
    error_after = 1 - summary(after, 0)["accuracy"]
    served = {r.model for r in after}
    print()
    print(f"corrections: {corrections} made on the page, {stored} stored, {held_out} held out; {confirmed} confirmed right guesses stored")
    print(f"users' drawings trained on: {trained_on}")
    print(f"training run: {status}, model {version}; the server answered the test half with {', '.join(sorted(served))}")
    print(f"MNIST test: {mnist_before:.2%} -> {mnist_after:.2%} ({(mnist_after - mnist_before) * 100:+.2f} points)")
    if fb_before is not None:
        print(f"held-out corrections: {fb_before:.2%} -> {fb_after:.2%}")
    print(
        f"test half (other drawings by the same writers): {1 - error_before:.2%} -> {1 - error_after:.2%}; "
        f"error {error_before:.2%} -> {error_after:.2%} (x{error_before / max(error_after, 1e-9):.2f} fewer errors)"
    )
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
