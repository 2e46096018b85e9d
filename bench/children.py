"""Benchmarks whose cases each train a model run each case in a fresh child process of their own
(`python -m <module> ... --only CASE --json FILE`): a fresh database, model folder and torch."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def child_runs(*, module: str, cases: list[str], flags: list[str]) -> list[dict]:
    """Run `module` once per case with `flags`, `--only CASE` and a `--json` file it writes its
    result to, one at a time (each trains on every core there is); the results in order."""
    results = []
    with tempfile.TemporaryDirectory(prefix=f"digitsite-{module.rsplit('.', 1)[-1]}-results-") as folder:
        for case in cases:
            path = Path(folder) / f"{case}.json"
            subprocess.run([sys.executable, "-m", module, *flags, "--only", case, "--json", str(path)], check=True)
            results.append(json.loads(path.read_text()))
    return results
