"""How wide to draw strokes, measured: MNIST's own stroke width, and what each width (and
drawing at 4x then shrinking, or not) does to the pen digits, cross-validated over writers.

The width is chosen on some writers and scored on the others (5 folds of 6 writers), never by
the score of all 30 at once. Stroke width is estimated the same way everywhere: twice the ink's
area over its outline's length (a strip of length L and width w has area Lw, outline 2L).

    python -m bench.stroke_width            # about 3 minutes on 2 cores
"""

import argparse
import os
from collections import defaultdict

import cv2
import numpy as np
import torch

from testing.pendigits_data import layout, load_digits

WIDTHS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5)
FOLDS = 5


def stroke_width(image: np.ndarray) -> float:
    """28x28 uint8, ink bright -> the strokes' width in pixels (2 x area / outline)."""
    ink = (image >= 128).astype(np.uint8)
    contours, _ = cv2.findContours(ink, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    outline = sum(cv2.arcLength(c, True) for c in contours)
    return 2 * ink.sum() / outline if outline else 0.0


def writer_folds(writers: list[int], folds: int) -> list[set[int]]:
    ordered = sorted(set(writers))
    return [set(ordered[i::folds]) for i in range(folds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="layout seed (default: 0)")
    parser.parse_args()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    from django.conf import settings

    from recognizer.preprocessing import strokes_to_input
    from recognizer.publishing import active_weights_load
    from training.nn.data import mnist_load
    from training.nn.inference import probabilities

    mnist = mnist_load(data_dir=settings.MNIST_DIR, train=False).images.numpy()
    widths = [stroke_width(image) for image in mnist]
    print(f"MNIST test stroke width: median {np.median(widths):.2f} px, mean {np.mean(widths):.2f}, "
          f"10-90% {np.percentile(widths, 10):.2f}-{np.percentile(widths, 90):.2f}")

    digits = load_digits()
    laid = [layout(d, 0) for d in digits]
    labels = torch.tensor([d.label for d in digits])
    writers = np.array([d.writer for d in digits])
    net = active_weights_load().net
    right: dict[tuple[float, int], np.ndarray] = {}
    for supersample in (1, 4):
        for width in WIDTHS:
            inputs = [strokes_to_input(strokes, line_width=width, supersample=supersample).image for strokes in laid]
            guesses = probabilities(net, torch.from_numpy(np.stack(inputs))).argmax(dim=1)
            right[width, supersample] = (guesses == labels).numpy()
            drawn = [stroke_width(image) for image in inputs[::10]]
            print(f"line {width:.1f} px, drawn at {supersample}x: {right[width, supersample].mean():.2%} of "
                  f"{len(digits)} pen digits right; stroke width median {np.median(drawn):.2f} px", flush=True)

    scores = defaultdict(list)
    for held in writer_folds(writers.tolist(), FOLDS):
        fit = ~np.isin(writers, list(held))
        choice = max(right, key=lambda key: (right[key][fit].mean(), -abs(key[0] - 2)))
        scores["choice"].append(choice)
        scores["held-out"].append(right[choice][~fit].mean())
        print(f"fold {sorted(held)}: chosen line {choice[0]:.1f} px at {choice[1]}x on the other writers; "
              f"held-out writers {right[choice][~fit].mean():.2%}")
    print(f"cross-validated accuracy (each fold scored with the width chosen without it): {np.mean(scores['held-out']):.2%}")


if __name__ == "__main__":
    main()
