"""What each augmentation lever does for real drawing: one model per row, each adding a lever;
the last row keeps only the classic levers and the writing styles.

Every row trains from scratch with `manage.py train_digits` (MNIST only, same seed, width and
epochs), in a folder of its own, then reads all 7,494 pen-stroke digits with the offline
renderer of bench.pendigits (the browser's figures differ by about a tenth of a point).

    python -m bench.levers [--width 16] [--epochs 4]     # about 5 minutes a row on 2 cores
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from testing.server import ROOT, manage

LEVERS = [
    ("rotation ±15°, translation ±10% (classic)", "slant=0,scale=1:1,stretch=0,elastic=0,thicken=0,thin=0,styles=0"),
    ("+ scale, slant and stretch", "elastic=0,thicken=0,thin=0,styles=0"),
    ("+ elastic wobble", "thicken=0,thin=0,styles=0"),
    ("+ stroke width (thicker/thinner)", "styles=0"),
    ("+ writing styles: lead-in 1, crossed 7 (all levers)", ""),
    # The geometric levers above cost pen digits at this size; this row shows styles without them.
    ("classic + writing styles only", "slant=0,scale=1:1,stretch=0,elastic=0,thicken=0,thin=0"),
]


def metadata(path: Path) -> dict:
    data = path.read_bytes()
    return json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16, help="net width for every row (default: 16)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs for every row (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="training and layout seed (default: 0)")
    args = parser.parse_args()

    rows = []
    for name, augment in LEVERS:
        workdir = Path(tempfile.mkdtemp(prefix="digitsite-lever-"))
        env = {"DIGITSITE_DB_PATH": str(workdir / "db.sqlite3"), "DIGITSITE_MODEL_DIR": str(workdir / "models")}
        manage("migrate", "--noinput", env=env, quiet=True)
        flags = ["--from-scratch", "--no-users", "--force", "--no-progress", "--width", str(args.width)]
        flags += ["--epochs", str(args.epochs), "--seed", str(args.seed), "--augment", augment]
        print(f"== {name}: train_digits {' '.join(flags)}", flush=True)
        manage("train_digits", *flags, env=env, quiet=True)
        out = workdir / "pendigits.json"
        subprocess.run(
            [sys.executable, "-m", "bench.pendigits", "--offline", "--seed", str(args.seed), "--out", str(out)],
            cwd=ROOT, env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        figures = json.loads(out.read_text())
        mnist = float(metadata(workdir / "models" / "active.safetensors")["mnist_test_accuracy"])
        confusions = ", ".join(f"{a}→{b} {n}" for a, b, n in figures["confusions"][:3])
        rows.append((name, augment or "(defaults)", mnist, figures["accuracy"], confusions))
        print(f"   MNIST test {mnist:.2%}, pen digits {figures['accuracy']:.2%}; top confusions {confusions}", flush=True)

    print(f"\n| levers (width {args.width}, {args.epochs} epochs) | --augment | MNIST test | pen digits (offline) | top confusions |")
    print("| --- | --- | --- | --- | --- |")
    for name, augment, mnist, pen, confusions in rows:
        print(f"| {name} | `{augment}` | {mnist:.2%} | {pen:.2%} | {confusions} |")


if __name__ == "__main__":
    main()
