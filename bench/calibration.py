"""Is the model's confidence honest, and where should "not sure" start? Measured on the pen digits.

1. The temperature is fitted on the 5,000 MNIST training images held out from training
   (train_digits does the same for every model it makes).
2. The expected calibration error (ECE) on all 7,494 pen digits, drawn as strokes (offline,
   layout seed 0), before and after, and on MNIST test.
3. The "not sure" threshold, cross-validated over writers: on each fold's other 24 writers the
   threshold is the lowest at which drawings the model is not sure of are wrong at least a
   third of the time... see `threshold_fit`; then scored on the fold's own 6 writers.

    python -m bench.calibration                       # about 1 minute
    python -m bench.calibration --write-shipped       # also store the temperature in the shipped model's file
    python -m bench.calibration --model FILE          # a candidate model file instead
"""

import argparse
import os

import numpy as np
import torch

from testing.pendigits_data import layout, load_digits

FOLDS = 5
CANDIDATES = np.round(np.arange(0.50, 0.995, 0.01), 2)
UNSURE_BUDGET = 0.05  # at most one drawing in 20 answered "not sure"


def threshold_fit(confidence: np.ndarray, right: np.ndarray) -> float:
    """The threshold that catches the most wrong guesses while answering "not sure" to at most
    UNSURE_BUDGET of the drawings: a person who draws 20 digits meets it once at most."""
    allowed = [t for t in CANDIDATES if (confidence < t).mean() <= UNSURE_BUDGET]
    return float(max(allowed, key=lambda t: (((confidence < t) & ~right).sum(), -t)))


def describe(confidence: np.ndarray, right: np.ndarray, top_two: np.ndarray, threshold: float) -> str:
    unsure = confidence < threshold
    return (
        f"not sure {unsure.mean():.1%} of drawings; sure guesses right {right[~unsure].mean():.2%}; "
        f"wrong guesses flagged {(unsure & ~right).sum()} of {(~right).sum()}; "
        f"right digit among the two shown when not sure {top_two[unsure].mean():.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-shipped", action="store_true", help="store the fitted temperature in the shipped model file (default: only print)")
    parser.add_argument("--model", default=None, help="measure this model file instead of the shipped one (not with --write-shipped)")
    args = parser.parse_args()
    if args.model and args.write_shipped:
        parser.error("--write-shipped writes the shipped model: not with --model")
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    from django.conf import settings

    from recognizer.modelfile import model_load, model_save
    from recognizer.preprocessing import strokes_to_input
    from training.nn.calibration import calibration_error, temperature_fit
    from training.nn.data import mnist_load, split
    from training.nn.inference import logits

    shipped = model_load(path=args.model or settings.SHIPPED_MODEL)
    _, val = split(mnist_load(data_dir=settings.MNIST_DIR, train=True), count=5000, seed=0)
    temperature = temperature_fit(logits=logits(shipped.net, val.images), labels=val.labels)
    print(f"model {shipped.version}: temperature {temperature:.3f} (fitted on 5,000 held-out MNIST training images)")

    test = mnist_load(data_dir=settings.MNIST_DIR, train=False)
    digits = load_digits()
    pen = torch.from_numpy(np.stack([strokes_to_input(layout(d, 0)).image for d in digits]))
    pen_labels = torch.tensor([d.label for d in digits])
    writers = np.array([d.writer for d in digits])
    for name, images, labels in [("MNIST test", test.images, test.labels), ("pen digits", pen, pen_labels)]:
        raw = logits(shipped.net, images)
        before = calibration_error(probabilities=raw.softmax(dim=1), labels=labels)
        after = calibration_error(probabilities=(raw / temperature).softmax(dim=1), labels=labels)
        print(f"{name}: expected calibration error {before:.2%} before, {after:.2%} after")

    probabilities = (logits(shipped.net, pen) / temperature).softmax(dim=1)
    confidence = probabilities.max(dim=1).values.numpy()
    right = (probabilities.argmax(dim=1) == pen_labels).numpy()
    top_two = (probabilities.topk(2).indices == pen_labels[:, None]).any(dim=1).numpy()
    ordered = sorted(set(writers))
    chosen = []
    for fold in range(FOLDS):
        held = np.isin(writers, ordered[fold::FOLDS])
        threshold = threshold_fit(confidence[~held], right[~held])
        chosen.append(threshold)
        print(f"fold {fold + 1}: threshold {threshold:.2f} chosen on 24 writers; on the other 6: "
              + describe(confidence[held], right[held], top_two[held], threshold))
    final = float(np.median(chosen))
    print(f"threshold (median of the folds' choices): {final:.2f}; on all 30 writers: " + describe(confidence, right, top_two, final))

    if args.write_shipped:
        model_save(net=shipped.net, metadata={**shipped.metadata, "temperature": round(temperature, 4)}, path=settings.SHIPPED_MODEL)
        print(f"temperature {temperature:.4f} written into {settings.SHIPPED_MODEL}")


if __name__ == "__main__":
    main()
