"""What simplifying strokes on arrival (recognizer.preprocessing.strokes_simplify, half a
canvas pixel) does to real pen digits: how many points the page sends and how many are kept,
and whether the 28x28 input and the guess change.

Every one of the 7,494 pen digits is laid out on the canvas as the page would send it
(testing.pendigits_data.layout: one point per pointer event, to a tenth of a pixel; draw.js
thins nothing). A pointer faster than the pen digits' tablet sends more points along the same
path: --denser K puts K-1 more points on each segment (rounded to a tenth of a pixel, as the
page records them) to see what such a pointer would send.

    python -m bench.simplify            # about 20 s on 2 cores
"""

import argparse
import os

import numpy as np


def denser(strokes: list[np.ndarray], k: int) -> list[np.ndarray]:
    out = []
    for stroke in strokes:
        if len(stroke) < 2 or k == 1:
            out.append(stroke)
            continue
        steps = np.arange(k) / k
        between = stroke[:-1, None, :] + (stroke[1:] - stroke[:-1])[:, None, :] * steps[None, :, None]
        out.append(np.round(np.concatenate([between.reshape(-1, 2), stroke[-1:]]) * 10) / 10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="layout seed (default: 0)")
    parser.add_argument("--denser", type=int, default=8, help="points per segment for a faster pointer (default: 8)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    from recognizer.preprocessing import strokes_simplify, strokes_to_input
    from recognizer.services import digit_predict
    from testing.pendigits_data import layout, load_digits

    digits = load_digits()
    recorded = np.array([sum(len(s) for s in d.strokes) for d in digits])
    strokes_n = np.array([len(d.strokes) for d in digits])
    sent, kept, dense_sent, dense_kept = [], [], [], []
    changed, pixels, worst, guesses_differ = 0, 0, 0, 0
    for digit in digits:
        strokes = layout(digit, args.seed)
        simple = strokes_simplify(strokes)
        sent.append(sum(len(s) for s in strokes))
        kept.append(sum(len(s) for s in simple))
        dense = denser(strokes, args.denser)
        dense_sent.append(sum(len(s) for s in dense))
        dense_kept.append(sum(len(s) for s in strokes_simplify(dense)))
        before = strokes_to_input(strokes).image.astype(int)
        after = strokes_to_input(simple).image.astype(int)
        difference = np.abs(before - after)
        if difference.any():
            changed += 1
            pixels += int((difference > 0).sum())
            worst = max(worst, int(difference.max()))
        guesses_differ += digit_predict(strokes=strokes).digit != digit_predict(strokes=simple).digit

    def spread(values) -> str:
        values = np.asarray(values)
        return f"median {np.median(values):.0f}, p99 {np.percentile(values, 99):.0f}, max {values.max()}"

    print(f"{len(digits):,} pen digits, layout seed {args.seed}")
    print(f"strokes per digit: max {strokes_n.max()}")
    print(f"points as recorded:                 {spread(recorded)}")
    print(f"points the page sends:              {spread(sent)}")
    print(f"kept after simplification:          {spread(kept)}")
    print(f"a pointer {args.denser}x denser sends:      {spread(dense_sent)}")
    print(f"  kept after simplification:        {spread(dense_kept)}")
    print(f"28x28 inputs that change: {changed:,} of {len(digits):,}; {pixels:,} pixels in all, "
          f"by at most {worst} of 255")
    print(f"guesses that change: {guesses_differ}")


if __name__ == "__main__":
    main()
