"""Where a model's "not a digit" line sits, and what it would refuse at the run's rate: for each
model, MNIST validation digits refused, the gate's held-out real and made not-digits refused and
the pen guard digits refused, as the model is and with its not-a-digit bias moved so that
`--max-refused` of MNIST validation is refused (training.steps.refusal, as a run now sets it). Read by
the PyTorch net; the shipped model first.

    python -m bench.refusal_shift [MODEL_FILE ...] [--max-refused 0.0004]
"""

import argparse
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="*", help="model files read after the shipped model (default: none)")
    parser.add_argument("--max-refused", type=float, default=0.0004, help="share of MNIST validation refused after the move (default: %(default)s)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    import numpy as np
    import torch
    from django.conf import settings

    from recognizer.modelfile import model_load
    from recognizer.pen_digits import pen_digits_strokes
    from recognizer.preprocessing import strokes_to_input
    from training.nn.data import mnist_load, split
    from training.nn.negatives import negatives_held_out
    from training.nn.omniglot import omniglot_held_out
    from training.options import RunOptions
    from training.steps.refusal import refusal_bias_limit, refusal_margins

    _, val = split(mnist_load(data_dir=Path(settings.MNIST_DIR), train=True), count=RunOptions.val_size, seed=RunOptions.validation_seed)
    sets = {
        "real not-digits": omniglot_held_out()[0].images,
        "made not-digits": negatives_held_out().digits.images,
        "pen guard digits": torch.from_numpy(np.stack([strokes_to_input(s).image for s in pen_digits_strokes()[0]])),
    }
    print(f"| model | bias raised by | MNIST validation refused | {' | '.join(sets)} |")
    print("| --- |" + " --- |" * (2 + len(sets)))
    for path in [Path(settings.SHIPPED_MODEL), *args.models]:
        net = model_load(path=path).net
        for moved, shift in ((net, 0.0), refusal_bias_limit(net=net, digits=val, max_refused=args.max_refused)):
            cells = [f"{int((refusal_margins(moved, val.images) > 0).sum())}"]
            for name, images in sets.items():
                refused = refusal_margins(moved, images) > 0
                cells.append(f"{int(refused.sum())}" if name.startswith("pen") else f"{float(refused.float().mean()):.1%}")
            print(f"| {path.name} | {-shift:+.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
