"""Choose a shipped model among candidate files, cross-validated over the pen digits' writers.

Each candidate (a safetensors model file, e.g. from several `train_digits --from-scratch` runs)
reads all 7,494 pen digits as strokes (offline, the serving preprocessing, layout seed 0) and
MNIST test. Then, in 5 folds of 6 writers: the candidate that reads the other 24 writers best
is scored on the fold's 6. Prints each candidate's figures, each fold's pick and the
cross-validated accuracy of choosing this way, never the score of all 30 writers at once.

    python -m bench.candidates models/*.safetensors       # about 10 s a candidate on 2 cores
"""

import argparse
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from bench.stroke_width import FOLDS, writer_folds
from testing.pendigits_data import BAND_NAMES, layout, load_digits, size_band


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help="candidate model files (safetensors)")
    args = parser.parse_args()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    from django.conf import settings

    from recognizer.modelfile import model_load
    from recognizer.preprocessing import strokes_to_input
    from training.nn.data import mnist_load
    from training.nn.inference import logits

    digits = load_digits()
    reads = [strokes_to_input(layout(d, 0)) for d in digits]
    readable = np.array([r.image is not None for r in reads])  # "too small" counts as wrong
    images = torch.from_numpy(np.stack([r.image if r.image is not None else np.zeros((28, 28), np.uint8) for r in reads]))
    labels = np.array([d.label for d in digits])
    writers = np.array([d.writer for d in digits])
    bands = np.array([size_band(d, 0) for d in digits])
    test = mnist_load(data_dir=settings.MNIST_DIR, train=False)

    right = {}
    for path in args.models:
        net = model_load(path=path).net
        guess = logits(net, images).argmax(dim=1).numpy()
        right[path] = (guess == labels) & readable
        mnist = (logits(net, test.images).argmax(dim=1) == test.labels).float().mean().item()
        wrong = Counter((int(a), int(b)) for a, b, ok in zip(labels, guess, right[path]) if not ok)
        per_band = "  ".join(f"{name}: {right[path][bands == name].mean():.2%}" for name in BAND_NAMES)
        print(f"{path.name}: MNIST test {mnist:.2%}, pen digits {right[path].mean():.2%} ({(~right[path]).sum()} wrong, "
              f"1->7 {wrong[(1, 7)]}); {per_band}", flush=True)

    chosen_right, picks = 0, []
    for held in writer_folds(list(writers), FOLDS):
        scored = np.isin(writers, list(held))
        best = max(args.models, key=lambda p: right[p][~scored].mean())
        picks.append(best.name)
        chosen_right += right[best][scored].sum()
    print(f"picked per fold (chosen on 24 writers): {', '.join(picks)}")
    print(f"cross-validated accuracy of choosing this way: {chosen_right / len(labels):.2%} ({len(labels) - chosen_right} wrong)")
    print(f"most often picked: {Counter(picks).most_common(1)[0][0]}")


if __name__ == "__main__":
    main()
