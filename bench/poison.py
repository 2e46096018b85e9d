"""Data poisoning through the feedback API: does a flood of wrong labels reach the served model?

Threat model: an attacker posts real drawings of one digit labelled as another (real 1s as 7,
real 4s as 9) through the corrections API's own write path (feedback.services.sample_create),
from one source, or from many (a script that drops its cookies), beside honest users'
corrections, all at once or (`thin-*`) spread over days, thinly enough that no burst rule holds
them; the site then retrains once with its defaults (site_options(), exactly `manage.py
train_digits` without flags). In `reviewer-approves-page` a careless reviewer first approves the
newest page of samples, whatever their status, and retrains as the admin's "Approve selected
samples and retrain now" does. Each scenario runs in a child process with a fresh SQLite
database and model folder, the shipped model active.

Pen writers, by number: writer % 3 == 0 are reserved (the project's guard set: never used
here); % 3 == 1 draw the honest corrections and the attack; % 3 == 2 are used by neither, and
all their digits measure the damage. A scenario passes when the served model loses at most 1
point on the attacked digit and 0.3 points on all digits of those unused writers.

    python -m bench.poison [--scenarios a,b] [--json FILE] [--seed 0] [train_digits flags]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from unittest import mock

import numpy as np

from bench.children import child_runs


@dataclass(frozen=True)
class Attack:
    digit: int  # what the drawings really are
    label: int  # what the attacker says they are
    sources: int  # 1: one source; more: the posts spread over that many, round-robin
    approve_newest: int = 0  # a reviewer approves this many of the newest samples before the run
    days: float = 0  # the posts, honest and attack, spread evenly over this many days up to now: 0, all at once


SCENARIOS = {
    "one-source-1to7": Attack(1, 7, sources=1),
    "many-sources-1to7": Attack(1, 7, sources=30),
    "one-source-4to9": Attack(4, 9, sources=1),
    "many-sources-4to9": Attack(4, 9, sources=30),
    # One page of the admin's samples list (list_per_page = 50), honest and poisoned mixed.
    "reviewer-approves-page": Attack(1, 7, sources=30, approve_newest=50),
    # Thinly spread: 150 posts over 10 days is 15 a day, under BURST_ALL_SOURCES (20 sure
    # corrections of one pair a day) and, from 30 sources, 5 each in all, under BURST_PER_SOURCE:
    # no burst rule holds them, and only the gate stands between them and the served model.
    "thin-many-sources-1to7": Attack(1, 7, sources=30, days=10),
    "thin-many-sources-4to9": Attack(4, 9, sources=30, days=10),
}
ATTACK_POSTS = 150
HONEST_PER_WRITER_DIGIT = 8
TARGET_ATTACKED, TARGET_ALL = 1.0, 0.3  # points the served model may lose on the unused writers
STATUSES = ("new", "needs_review", "approved")


def scenario(name: str, seed: int, options) -> dict:
    """One scenario in this process's fresh database: honest corrections, the attack, one run."""
    from django.core.management import call_command
    from django.utils import timezone

    from bench.feedback_offline import model_inputs, read
    from feedback.models import Sample
    from feedback.services import SourceOverDailyLimit, sample_create, sample_review
    from recognizer.services import SURE_THRESHOLD
    from testing.pendigits_data import layout, load_digits, stratified_subset
    from training.queue import training_run_start
    from training.runs.decision import FAILURE_TEXT, failure_of
    from training.steps.pipeline import training_run_execute

    attack, started = SCENARIOS[name], time.perf_counter()
    call_command("migrate", verbosity=0)
    digits = load_digits()
    own, unused = [d for d in digits if d.writer % 3 == 1], [d for d in digits if d.writer % 3 == 2]
    unused_inputs = model_inputs(unused, seed)
    before = read(unused, unused_inputs)

    honest = stratified_subset(own, HONEST_PER_WRITER_DIGIT, seed)
    wrong = [d for d, right in zip(honest, read(honest, model_inputs(honest, seed))) if not right]
    posts = [(d, d.label, f"anon:writer{d.writer}") for d in wrong]
    # Drawings the honest users did not send, so that no drawing arrives with two labels.
    taken = {d.index for d in honest}
    pool = [d for d in own if d.label == attack.digit and d.index not in taken]
    sources = ["anon:attacker"] if attack.sources == 1 else [f"anon:attacker-{i}" for i in range(attack.sources)]
    posts += [(d, attack.label, sources[i % len(sources)]) for i, d in enumerate(random.Random(seed).sample(pool, ATTACK_POSTS))]
    random.Random(seed).shuffle(posts)  # honest users and the attacker send at the same time
    refused, now = Counter(), timezone.now()
    for number, (digit, label, source) in enumerate(posts):
        # Each post at its own time (the burst rules and the daily cap read the clock).
        at = now - timedelta(days=attack.days) * (1 - number / len(posts))
        try:
            with mock.patch("django.utils.timezone.now", return_value=at):
                sample_create(strokes=layout(digit, seed), label=label, source=source)
        except SourceOverDailyLimit:
            refused["attack" if source.startswith("anon:attacker") else "honest"] += 1
    approved = 0
    if attack.approve_newest:
        page = Sample.objects.order_by("-created_at", "-id")[: attack.approve_newest]
        approved = sample_review(samples=list(page), status=Sample.Status.APPROVED)

    def by_status(samples) -> dict[str, int]:
        counts = Counter(samples.values_list("status", flat=True))
        return {status: counts.get(status, 0) for status in (*STATUSES, *sorted(set(counts) - set(STATUSES)))}

    # Counted as the run finds them: after the reviewer, if any.
    attackers = Sample.objects.filter(source__startswith="anon:attacker")
    stored, attack_stored = by_status(Sample.objects.all()), by_status(attackers)
    attack_sure = attackers.filter(guess=attack.digit, confidence__gte=SURE_THRESHOLD).count()
    run = training_run_execute(run=training_run_start(options=options, log=print), log=print)
    after = read(unused, unused_inputs)
    # The run's own model, promoted or not: what the poison taught, whatever the gate decided.
    made = read(unused, unused_inputs, version=run.model_version) if run.model_version else after
    attacked = np.array([d.label == attack.digit for d in unused])

    def pen(right: np.ndarray) -> dict[str, float]:
        return {"attacked": right[attacked].mean() * 100, "all": right.mean() * 100}

    report = run.report or {}
    mnist = report.get("confusion", {}).get("mnist", {})
    # The digits' rows only: an 11-class model's matrix has a row for "not a digit", which MNIST never is.
    per_digit = {when: [row[d] / sum(row) * 100 for d, row in enumerate(m) if sum(row)] for when, m in mnist.items() if m}
    overall = {when: sum(row[d] for d, row in enumerate(m)) / sum(map(sum, m)) * 100 for when, m in mnist.items() if m}
    result = {
        "scenario": name, "attack": vars(attack), "seed": seed, "posts": {"honest": len(wrong), "attack": ATTACK_POSTS},
        "stored": stored, "attack_stored": attack_stored, "attack_sure": attack_sure, "refused": dict(refused),
        "reviewer_approved": approved, "trained_on": run.users_samples,
        "attack_trained_on": run.samples.filter(source__startswith="anon:attacker").count(),
        "held_out": run.corrections_held_out, "confirmed_held_out": run.confirmed_held_out, "set_aside": report.get("set_aside"),
        "status": run.status, "decision": run.decision, "failures": [FAILURE_TEXT[failure_of(f)] for f in report.get("decision", {}).get("failures", [])],
        "published": report.get("decision", {}).get("published"), "keep": report.get("decision", {}).get("keep"),
        "unused_writers": {"drawings": len(unused), "attacked_drawings": int(attacked.sum()),
                           "before": pen(before), "after": pen(after), "run_model": pen(made)},
        "mnist": {"per_digit": per_digit, "all": overall}, "options": run.options, "seconds": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    b, a = result["unused_writers"]["before"], result["unused_writers"]["after"]
    result["pass"] = bool(b["attacked"] - a["attacked"] <= TARGET_ATTACKED and b["all"] - a["all"] <= TARGET_ALL)
    return result


def show(r: dict) -> None:
    u, d = r["unused_writers"], r["attack"]["digit"]
    print(f"\n== {r['scenario']}: {r['posts']['attack']} real {d}s labelled {r['attack']['label']} from {r['attack']['sources']} source(s), "
          f"{r['posts']['honest']} honest corrections; refused: {r['refused'] or 0}")  # fmt: skip
    print(f"stored: {r['stored']}; the attack's: {r['attack_stored']}, {r['attack_sure']} of them sure {d} -> {r['attack']['label']} "
          f"corrections (what the burst check counts); approved by the reviewer: {r['reviewer_approved']}")  # fmt: skip
    set_aside = "n/a" if r["set_aside"] is None else r["set_aside"]
    print(f"run trained on {r['trained_on']} ({r['attack_trained_on']} of the attack's), held out {r['held_out']} corrections "
          f"and {r['confirmed_held_out']} confirmed, set aside by the per-source cap: {set_aside}")  # fmt: skip
    print(f"run: {r['status']}; {r['decision']}")
    for what, key in ((f"the attacked digit {d}", "attacked"), ("all digits", "all")):
        b, a, m = u["before"][key], u["after"][key], u["run_model"][key]
        print(f"unused writers, {what}: {b:.2f}% -> {a:.2f}% served ({a - b:+.2f} points); the run's own model {m:.2f}% ({m - b:+.2f})")
    mnist = r["mnist"]["per_digit"]
    if mnist:
        print("MNIST test per digit, before -> after (the run's model): "
              + ", ".join(f"{i}: {x:.1f}->{y:.1f}" for i, (x, y) in enumerate(zip(mnist["before"], mnist["after"]))))  # fmt: skip
    print(f"targets (lose at most {TARGET_ATTACKED:g} point on the {d}s, {TARGET_ALL:g} on all): {'PASS' if r['pass'] else 'FAIL'}; {r['seconds']:.0f} s")


def table(results: list[dict]) -> str:
    lines = [
        "| scenario | stored new / needs_review / approved | trained on (attack's) / set aside | decision "
        "| attacked digit before → after | all pen before → after | MNIST before → the run's | pass |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        u, d, m = r["unused_writers"], r["attack"]["digit"], r["mnist"]
        stored = " / ".join(str(r["stored"][s]) for s in STATUSES)
        refused = sum(r["refused"].values())
        stored += f" ({refused} refused)" if refused else ""
        set_aside = "n/a" if r["set_aside"] is None else r["set_aside"]
        blend = f" (blend keeping {r['keep']:.0%})" if r["published"] == "blend" else ""
        decision = r["status"] + blend + "".join(f"; {f}" for f in r["failures"])
        mnist = "n/a"
        if m["all"]:
            before, after = m["per_digit"]["before"][d], m["per_digit"]["after"][d]
            mnist = f"{m['all']['before']:.2f} → {m['all']['after']:.2f} ({d}s {before:.2f} → {after:.2f})"
        lines.append(
            f"| {r['scenario']} | {stored} | {r['trained_on']} ({r['attack_trained_on']}) / {set_aside} | {decision} "
            f"| {d}: {u['before']['attacked']:.2f} → {u['after']['attacked']:.2f} | {u['before']['all']:.2f} → {u['after']['all']:.2f} "
            f"| {mnist} | {'PASS' if r['pass'] else 'FAIL'} |"
        )
    return "\n".join(lines)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="digitsite-poison-"))
    os.environ.update(DIGITSITE_DB_PATH=str(workdir / "db.sqlite3"), DIGITSITE_MODEL_DIR=str(workdir / "models"))
    os.environ.pop("DATABASE_URL", None)  # it would win over the fresh SQLite file: never poison a real database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    from training import options as run_options

    # "resolve": this --seed replaces train_digits' own, and seeds the run all the same.
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, conflict_handler="resolve")
    run_options.add_arguments(parser)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here as JSON (default: none)")
    seed = run_options.site_defaults()["seed"]
    parser.add_argument("--seed", type=int, default=seed, help=f"seeds the drawings chosen, their layout and the training run (default: {seed})")
    parser.add_argument("--only", choices=list(SCENARIOS), help=argparse.SUPPRESS)  # a child: one scenario, in this process
    args = parser.parse_args()
    if args.only:
        result = scenario(args.only, args.seed, run_options.from_arguments(vars(args)))
        show(result)
        args.json.write_text(json.dumps(result, indent=1))
        return
    names = args.scenarios.split(",")
    if unknown := set(names) - set(SCENARIOS):
        parser.error(f"no scenario {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    results = child_runs(module="bench.poison", cases=names, flags=sys.argv[1:])
    flags = " ".join(sys.argv[1:]) or "none"
    print(f"\n{len(results)} scenario(s) in {time.perf_counter() - started:.0f} s, seed {args.seed}, flags: {flags}")
    for result in results:
        show(result)
    print("\n" + table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
