"""A retrain that should change nothing: the default `train_digits` with no users' drawings, from
the shipped model, once per seed. How often does the gate promote it, and how far does each of
its clauses move by chance (and by the recipe's own drift)?

Each seed runs in a child process with a fresh SQLite database and model folder, the shipped
model active, so every seed starts from the same model.

    python -m bench.noop [--seeds 0,1,2,3,4] [--json FILE] [train_digits flags, e.g. --fallback-keep 0]

With `--fallback-keep 0` the new model itself is what the gate judges (no blends): the recipe's
drift, clause by clause.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.children import child_runs


def one_run(seed: int, options) -> dict:
    """One default retrain without users' drawings in this process's fresh database."""
    from dataclasses import replace

    from django.core.management import call_command

    from training.queue import training_run_start
    from training.runs.decision import FAILURE_TEXT, Decision
    from training.runs.presentation import clause_rows
    from training.steps.pipeline import training_run_execute

    call_command("migrate", verbosity=0)
    said: list[str] = []
    started = time.perf_counter()
    run = training_run_execute(run=training_run_start(options=replace(options, seed=seed, use_users=False), log=print), log=said.append)
    decision = Decision.from_dict(run.report["decision"])
    return {
        "seed": seed, "status": run.status, "published": decision.published, "keep": decision.keep,
        "failures": [FAILURE_TEXT[f] for f in decision.failures], "new_model_failures": [FAILURE_TEXT[f] for f in decision.new_model_failures],
        "clauses": [
            {"name": row.clause, "before": row.before, "after": row.after, "held": not row.failed, "worse": row.comparison.worse,
             "better": row.comparison.better, "chance": row.comparison.chance, "change": row.comparison.change}
            for row in clause_rows(decision) if row.comparison is not None
        ],
        "gate_said": [line for line in said if line.startswith(("the gate", "'not a digit'"))],  # the new model's decision first, then any blend's
        "decision": run.decision, "seconds": round(time.perf_counter() - started, 1), "load_average": os.getloadavg()[0],
    }  # fmt: skip


def show(r: dict) -> None:
    blend = f" (blend keeping {r['keep']:.0%}; the new model failed: {'; '.join(r['new_model_failures'])})" if r["published"] == "blend" else ""
    print(f"\n== seed {r['seed']}: {r['status']}{blend}, {r['seconds']:.0f} s (load average {r['load_average']:.1f})")
    for line in r.get("gate_said", [])[:-1]:
        print(f"  {line}")
    for c in r["clauses"]:
        if c["worse"] is None:
            continue
        chance = f", chance {c['chance']:.3g}" if c["worse"] > c["better"] else ""
        print(f"  {c['name']:<48} {c['change']:+6.2f} points ({c['worse']} lost, {c['better']} gained{chance}){'' if c['held'] else '  FAILED'}")


def table(results: list[dict]) -> str:
    """Each clause's change per seed, in points (lost/gained drawings)."""
    names = sorted({c["name"] for r in results for c in r["clauses"] if c["worse"] is not None})  # a clause no drawing moved in is left out of a seed's list
    lines = ["| clause | " + " | ".join(f"seed {r['seed']}" for r in results) + " |", "| --- |" + " --- |" * len(results)]
    for name in names:
        cells = []
        for r in results:
            c = next((c for c in r["clauses"] if c["name"] == name), None)
            if c is None or c["worse"] is None:
                cells.append("0.00 (0/0)")
                continue
            cells.append(f"{c['change']:+.2f} ({c['worse']}/{c['better']}){'' if c['held'] else ' **failed**'}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    decisions = [r["status"] + (f", blend {r['keep']:.0%}" if r["published"] == "blend" else "") for r in results]
    lines.append("| decision | " + " | ".join(decisions) + " |")
    return "\n".join(lines)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated training seeds, one run each (default: 0,1,2,3,4)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here as JSON (default: none)")
    parser.add_argument("--collect", type=Path, nargs="+", default=None, help="print the table of earlier results (JSON files this wrote) and stop")
    parser.add_argument("--only", type=int, default=None, help=argparse.SUPPRESS)  # a child: one seed, in this process
    if "--only" in sys.argv:
        workdir = Path(tempfile.mkdtemp(prefix="digitsite-noop-"))
        os.environ.update(DIGITSITE_DB_PATH=str(workdir / "db.sqlite3"), DIGITSITE_MODEL_DIR=str(workdir / "models"))
        os.environ.pop("DATABASE_URL", None)  # never a real database
    import django

    django.setup()
    from training import options as run_options

    run_options.add_arguments(parser)
    args = parser.parse_args()
    if args.collect:
        results = [r for path in args.collect for r in _as_list(json.loads(path.read_text()))]
        print(f"{len(results)} no-op retrain(s): {sum(r['status'] == 'promoted' for r in results)} promoted")
        for result in results:
            show(result)
        print("\n" + table(results))
        return
    if args.only is not None:
        result = one_run(args.only, run_options.from_arguments(vars(args)))
        show(result)
        args.json.write_text(json.dumps(result, indent=1))
        return
    started = time.perf_counter()
    results = child_runs(module="bench.noop", cases=args.seeds.split(","), flags=_without(sys.argv[1:], "--seeds", "--json"))
    promoted = sum(r["status"] == "promoted" for r in results)
    print(f"\n{len(results)} no-op retrain(s) in {time.perf_counter() - started:.0f} s, flags: {' '.join(sys.argv[1:]) or 'none'}: {promoted} promoted")
    for result in results:
        show(result)
    print("\n" + table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def _as_list(value: dict | list) -> list[dict]:
    return value if isinstance(value, list) else [value]


def _without(flags: list[str], *names: str) -> list[str]:
    """`flags` less the named ones and their values (`--seeds 0,1` or `--seeds=0,1`)."""
    out, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag in names:
            skip = True
        elif not flag.startswith(tuple(f"{name}=" for name in names)):
            out.append(flag)
    return out


if __name__ == "__main__":
    main()
