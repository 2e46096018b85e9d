"""Build the pen guard set that ships with the project: recognizer/pen_digits/pendigits.npz.

The promotion gate (training.steps.gate) judges every new model on real pen drawings that no user
can write to. They are the UCI pen digits of writers 3, 6, ..., 30 (a third of the writers,
2,500 drawings), laid out on the page's canvas as the benchmarks lay them out (seed 0) and
simplified as the site simplifies strokes on arrival, so the gate reads them as a guess would.
The other writers stay unseen by it: bench.poison attacks with writers 1, 4, ..., 28 and
measures on writers 2, 5, ..., 29.

    python -m bench.guard_set [--source ../shared/pendigits/pendigits-orig.tra]

Kept as whole tenths of a canvas pixel (int16), strokes and drawings as point counts.
"""

import argparse
from pathlib import Path

import numpy as np

from recognizer.pen_digits import PEN_DIGITS_PATH
from recognizer.preprocessing import strokes_simplify
from testing.pendigits_data import DEFAULT_PATH, GUARD_WRITERS, layout, load_digits

LAYOUT_SEED = 0
TARGET = PEN_DIGITS_PATH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_PATH, help=f"the UCI file (default: {DEFAULT_PATH})")
    parser.add_argument("--out", type=Path, default=TARGET, help=f"where to write (default: {TARGET})")
    args = parser.parse_args()

    digits = [d for d in load_digits(args.source) if d.writer % GUARD_WRITERS == 0]
    points, stroke_points, drawing_strokes = [], [], []
    for digit in digits:
        strokes = strokes_simplify(layout(digit, LAYOUT_SEED))
        drawing_strokes.append(len(strokes))
        for stroke in strokes:
            stroke_points.append(len(stroke))
            points.append(np.round(stroke * 10).astype(np.int16))
    np.savez_compressed(
        args.out,
        points=np.concatenate(points),
        stroke_points=np.array(stroke_points, dtype=np.int16),
        drawing_strokes=np.array(drawing_strokes, dtype=np.int8),
        labels=np.array([d.label for d in digits], dtype=np.int8),
        writers=np.array([d.writer for d in digits], dtype=np.int8),
    )
    writers = sorted({d.writer for d in digits})
    print(f"{len(digits)} drawings of writers {writers}, {sum(stroke_points)} points: {args.out} ({args.out.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
