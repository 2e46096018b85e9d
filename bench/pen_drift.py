"""Which real pen digits does a retrain lose, and to what? Each model given is read on all 7,494
pen digits of ../shared/pendigits (strokes drawn by the serving code, layout seed 0, as
`bench.pendigits --offline` draws them) by its PyTorch net, against the shipped model (or
--base): per model, the drawings lost (read right before, wrong after) and gained, digit by
digit, and what the lost 1s became. All 30 writers, the pen guard set's 10 among them: more
drawings than the guard's 2,498, for telling a recipe's drift from chance.

    python manage.py train_digits --no-users --force --seed 0 [flags]    # in a fresh DIGITSITE_MODEL_DIR
    python -m bench.pen_drift path/to/versions/*.safetensors [--base FILE]
"""

import argparse
import os
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="model files to read")
    parser.add_argument("--base", type=Path, default=None, help="the model they are compared with (default: the shipped model)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    import torch
    from django.conf import settings

    from recognizer.labels import NOT_A_DIGIT
    from recognizer.modelfile import model_load
    from recognizer.preprocessing import strokes_to_input
    from testing.pendigits_data import DEFAULT_PATH, layout, load_digits
    from training.nn.data import Digits
    from training.nn.inference import predictions

    pen = load_digits(DEFAULT_PATH)
    digits = Digits.from_arrays([strokes_to_input(layout(d, 0)).image for d in pen], [d.label for d in pen])
    labels = digits.labels.numpy()

    def read(path: Path) -> np.ndarray:
        return predictions(model_load(path=path).net, digits).numpy()

    base = read(args.base or settings.SHIPPED_MODEL)
    totals = np.zeros((2, 10), dtype=int)
    print(f"{len(labels)} pen digits; lost / gained against {(args.base or settings.SHIPPED_MODEL).name}, digit by digit")
    for path in args.models:
        now = read(path)
        lost, gained = (base == labels) & (now != labels), (base != labels) & (now == labels)
        by_digit = np.array([[np.sum(lost & (labels == d)), np.sum(gained & (labels == d))] for d in range(10)]).T
        totals += by_digit
        became = np.bincount(now[lost & (labels == 1)], minlength=NOT_A_DIGIT + 1)
        ones = ", ".join(f"{'not a digit' if d == NOT_A_DIGIT else d}: {n}" for d, n in enumerate(became) if n) or "none"
        print(f"{path}: all {lost.sum()} / {gained.sum()}; "
              f"{' '.join(f'{d}:{a}/{b}' for d, (a, b) in enumerate(by_digit.T))}; the 1s lost became {ones}")  # fmt: skip
    print(f"summed: all {totals[0].sum()} / {totals[1].sum()}; {' '.join(f'{d}:{a}/{b}' for d, (a, b) in enumerate(totals.T))}")


if __name__ == "__main__":
    main()
