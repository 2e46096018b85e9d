"""The feedback loop without a browser: how much one training run learns from the users'
corrections, and what it costs on MNIST. For comparing training recipes quickly.

Like bench.feedback_loop, but the pen digits' strokes go straight to the site's own
preprocessing, without a browser, and are read in batches by the network the site serves for
the active model (8 bits, ONNX Runtime; until 29 November 07:45 by the PyTorch net, which read
one of seed 1's test-half drawings differently):

1. 8 of each digit from each writer outside the gate's pen guard set (20 writers: 1,600), split
   per writer and digit into a teaching half and a test half; with --far N, every digit of the N
   of those writers the active model reads worst (until issue 37, 6 December 2026, every writer was used,
   the guard's own among them: the run trained on drawings that judged it);
2. the test half is read: accuracy before;
3. every wrong guess on the teaching half is stored as a correction (feedback.services.sample_create),
   each writer as its own source;
4. one training run with the given options (every `train_digits` flag works here, with the
   same defaults);
5. the test half is read again by the model that is now active: accuracy after.

Everything happens in a fresh SQLite database and model folder; the shipped model starts active.

    python -m bench.feedback_offline [--seed 0] [train_digits flags, e.g. --epochs 3 --lr 1e-3]

--seed seeds the halves, the layout and the training run alike; --train-seed sets the run's apart.
"""

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.feedback_loop import halves
from bench.pendigits import RESULTS, confirms
from testing.pendigits_data import PenDigit, layout, load_digits, outside_guard, stratified_subset


def model_inputs(digits: list[PenDigit], seed: int) -> np.ndarray:
    """What the site's preprocessing makes of each drawing's strokes, as the page sends them:
    (N, 28, 28) uint8."""
    from recognizer.preprocessing import strokes_to_input

    return np.stack([strokes_to_input(layout(d, seed)).image for d in digits])


def read(digits: list[PenDigit], inputs: np.ndarray, *, version: str = "") -> np.ndarray:
    """Which drawings a model reads right, in one batch, by the network the site serves (8 bits,
    ONNX Runtime: its serving form, recognizer.servingform) after the service's preprocessing,
    as the page's guesses are. The active model unless `version` is given."""
    from recognizer.preprocessing import normalize
    from recognizer.serving import active_model
    from recognizer.store import version_load

    model = version_load(version=version) if version else active_model()
    labels = np.array([d.label for d in digits])
    return model.serving_net()(normalize(inputs)).argmax(1) == labels


def far_writers(digits: list[PenDigit], *, count: int, seed: int) -> list[PenDigit]:
    """Every drawing of the `count` writers whose drawings the active model reads worst."""
    right = read(digits, model_inputs(digits, seed))
    writers = sorted({d.writer for d in digits})
    share = {w: np.mean([r for d, r in zip(digits, right) if d.writer == w]) for w in writers}
    worst = set(sorted(writers, key=lambda w: (share[w], w))[:count])
    return [d for d in digits if d.writer in worst]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="digitsite-feedback-offline-"))
    os.environ.update(DIGITSITE_DB_PATH=str(workdir / "db.sqlite3"), DIGITSITE_MODEL_DIR=str(workdir / "models"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from feedback.services import sample_create
    from training import options as run_options
    from training.queue import training_run_start
    from training.steps.pipeline import training_run_execute

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-writer-digit", type=int, default=8, help="digits of each kind per writer, split in halves (default: 8)")
    parser.add_argument("--label", default="", help="a name for this recipe in the results (default: none)")
    parser.add_argument(
        "--arrival", type=int, default=None,
        help="store the corrections in an order shuffled with this seed, as the browser's pages interleave them; "
        "which are held out follows the order (default: in the drawings' order)",
    )  # fmt: skip
    parser.add_argument(
        "--confirm", type=float, default=0.0,
        help="share of the right guesses on the teaching half that the user confirms with Yes, stored beside the "
        "corrections (default: 0, as in bench.feedback_loop: only wrong guesses are stored)",
    )  # fmt: skip
    parser.add_argument(
        "--runs", type=int, default=1,
        help="training runs one after another without new drawings, as a reviewer pressing Retrain again: each "
        "fine-tunes the active model on the same drawings (those it has learnt are not repeated), the same ones held out (default: 1)",
    )  # fmt: skip
    parser.add_argument(
        "--waves", type=int, default=1,
        help="teach in this many waves, each read by the model active then, its wrong guesses stored and --runs "
        "runs made after it, as on a site retrained now and then (default: 1)",
    )  # fmt: skip
    parser.add_argument(
        "--train-seed", type=int, default=None,
        help="seed of the training run only, to see how far a recipe's result moves with its own randomness "
        "(default: --seed; bench.feedback_loop's run uses train_digits' default, 0)",
    )  # fmt: skip
    parser.add_argument(
        "--far", type=int, default=0,
        help="teach and test with every drawing of the N writers outside the pen guard whom the active model reads worst "
        "(their styles furthest from what it knows; default: 0, --per-writer-digit of every writer outside the guard)",
    )  # fmt: skip
    run_options.add_arguments(parser)
    args = parser.parse_args()
    options = run_options.from_arguments(vars(args))
    if args.train_seed is not None:
        options = dataclasses.replace(options, seed=args.train_seed)
    call_command("migrate", verbosity=0)

    writers = outside_guard(load_digits())
    if args.far:
        writers = far_writers(writers, count=args.far, seed=args.seed)
        print(f"seed {args.seed}: the {args.far} writers read worst: {sorted({d.writer for d in writers})}", flush=True)
    teach, test = halves(writers if args.far else stratified_subset(writers, args.per_writer_digit, args.seed), args.seed)
    teach_inputs, test_inputs = model_inputs(teach, args.seed), model_inputs(test, args.seed)
    before = read(test, test_inputs)
    wrong, confirmed, stored_as, runs = [], [], {}, []
    seconds = cpu_seconds = 0.0  # in the training runs only
    for wave in range(args.waves):
        # Each wave's drawings are read by the model active then, as on the site between retrains.
        part = list(range(wave, len(teach), args.waves))
        right = read([teach[i] for i in part], teach_inputs[part])
        wave_wrong = [teach[i] for i, r in zip(part, right) if not r]
        wave_confirmed = [teach[i] for i, r in zip(part, right) if r and confirms(teach[i], seed=args.seed, share=args.confirm)]
        chosen = {d.index for d in wave_wrong + wave_confirmed}
        stored = [teach[i] for i in part if teach[i].index in chosen]
        if args.arrival is not None:
            random.Random(args.arrival).shuffle(stored)
        # Each writer is one sender, as on the site: the per-source caps and bursts see them apart.
        stored_as |= {
            sample_create(strokes=layout(digit, args.seed), label=digit.label, source=f"anon:writer{digit.writer}").pk: digit for digit in stored
        }
        wrong, confirmed = wrong + wave_wrong, confirmed + wave_confirmed
        print(
            f"seed {args.seed}, wave {wave + 1} of {args.waves}: {len(part)} digits taught, {len(wave_wrong)} corrections and "
            f"{len(wave_confirmed)} confirmed right guesses stored; test half {before.mean():.2%} before",
            flush=True,
        )
        for _ in range(args.runs):
            started, cpu_started = time.perf_counter(), time.process_time()
            runs.append(training_run_execute(run=training_run_start(options=options, log=print), log=print))
            seconds, cpu_seconds = seconds + time.perf_counter() - started, cpu_seconds + time.process_time() - cpu_started
    first, run = runs[0], runs[-1]
    after = read(test, test_inputs)
    # The run's own model, promoted or not: what the recipe learnt, whatever the gate decided.
    made = read(test, test_inputs, version=run.model_version) if run.model_version else after
    # What was left to learn from: the same writer's corrections of the same digit, trained on.
    wrong_indices = {d.index for d in wrong}
    taught_kinds = {
        (stored_as[pk].writer, stored_as[pk].label) for pk in run.samples.values_list("pk", flat=True) if stored_as[pk].index in wrong_indices
    }
    left = [d for d, right in zip(test, made) if not right]
    left_alike = sum((d.writer, d.label) in taught_kinds for d in left)

    figures = {
        "label": args.label or " ".join(sys.argv[1:]),
        "writers": sorted({d.writer for d in teach}),
        "seed": args.seed,
        "arrival": args.arrival,
        "train_seed": options.seed,
        "corrections": len(wrong),
        "confirmed": len(confirmed),
        "trained_on": run.users_samples,
        "held_out": run.corrections_held_out,
        "confirmed_held_out": run.confirmed_held_out,
        "test_before": before.mean(),
        "test_after": after.mean(),
        "errors_before": int((~before).sum()),
        "errors_after": int((~after).sum()),
        "errors_new_model": int((~made).sum()),
        "errors_left_with_a_correction_alike": left_alike,
        "errors_fixed": int((~before & made).sum()),
        "errors_made": int((before & ~made).sum()),
        "mnist_before": first.mnist_accuracy_before,
        "mnist_after": run.mnist_accuracy,
        "held_out_before": run.corrections_accuracy_before,
        "held_out_after": run.corrections_accuracy,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "load_average": os.getloadavg()[0],
        "status": run.status,
        "decision": run.decision,
        "epochs": run.report.get("epochs"),
        "options": run.options,
        "runs": [
            {"status": r.status, "trained_on": r.users_samples, "held_out": r.corrections_held_out, "mnist_before": r.mnist_accuracy_before,
             "mnist_after": r.mnist_accuracy, "decision": r.decision}
            for r in runs
        ],  # fmt: skip
    }
    print()
    print(f"recipe: {figures['label']}")
    print(
        f"users' drawings: {len(wrong)} corrections and {len(confirmed)} confirmed stored, {run.users_samples} trained on; "
        f"held out: {run.corrections_held_out} corrections, {run.confirmed_held_out} confirmed"
    )
    print(
        f"test half: {figures['test_before']:.2%} -> {figures['test_after']:.2%} (errors {figures['errors_before']} -> "
        f"{figures['errors_after']}, x{figures['errors_before'] / max(figures['errors_after'], 1):.2f} fewer)"
    )
    if run.status != "promoted":
        print(f"test half read by the new model, not promoted: {made.mean():.2%} (errors {figures['errors_before']} -> {figures['errors_new_model']})")
    print(
        f"errors the run's model leaves: {len(left)}, {left_alike} of them with a trained-on correction of the same "
        f"writer and digit, {len(left) - left_alike} with none to learn from; it fixed {figures['errors_fixed']} "
        f"of the errors before and misread {figures['errors_made']} drawings read right before"
    )
    for number, r in enumerate(runs[:-1], 1):
        print(f"run {number} of {len(runs)}: {r.status}, {r.users_samples} trained on, {r.corrections_held_out} corrections held out; {r.decision}")
    print(f"MNIST test: {first.mnist_accuracy_before:.2%} -> {run.mnist_accuracy:.2%} ({(run.mnist_accuracy - first.mnist_accuracy_before) * 100:+.2f} points)")
    print(f"run: {run.status} in {seconds:.0f} s ({cpu_seconds:.0f} CPU seconds, load average {os.getloadavg()[0]:.1f}); {run.decision}")
    out = RESULTS / "feedback-offline.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as file:
        file.write(json.dumps(figures) + "\n")
    print(f"appended to {out}")


if __name__ == "__main__":
    main()
