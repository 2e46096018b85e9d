"""How readily a model says "not a digit": its bias, set so that digits are almost never refused.

A model learns "not a digit" from letters, scribbles and shapes (training.negatives), and then
refuses some real digits too: after a fine-tune, 18 of MNIST's 5,000 validation images
(docs/results.md, "Not a digit"). A person who drew a digit and is told it is none has met the
worst answer the site gives, so the not-a-digit output's bias is set so that `max_refused` of
the validation digits are refused, no more (lowered, or raised after a fine-tune that moved it down). Among the digits nothing changes; only the
line between "a digit" and "not a digit" moves.

    python -m training.refusal --model candidate.safetensors --out recognizer/weights/digitnet.safetensors
    python -m training.refusal --model tuned.safetensors --blend-from head.safetensors --keep 0.5 --out ...

--blend-from takes `keep` of the way from another model's weights to --model's first (as the gate's
fallback blends do): how the shipped model was made, halfway between the not-a-digit output fitted
alone (training.refusal_head, digits untouched) and a fine-tune on the negatives, which refuses more
but cost MNIST test 0.13 points (docs/results.md, "Not a digit").
"""

import argparse
import copy
import os
from pathlib import Path

import torch

from recognizer.labels import NOT_A_DIGIT
from recognizer.net import DigitNet
from training.data import Digits
from training.trainer import blend, logits

MAX_REFUSED = 0.0004  # of MNIST's validation digits: 2 of 5,000


def refusal_margins(net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """How far "not a digit" is above the likeliest digit, in logits, for each image: > 0 refuses."""
    z = logits(net, images)
    return z[:, NOT_A_DIGIT] - z[:, :NOT_A_DIGIT].max(dim=1).values


def refusal_bias_limit(*, net: DigitNet, digits: Digits, max_refused: float = MAX_REFUSED) -> tuple[DigitNet, float]:
    """A copy of `net` whose not-a-digit bias is moved so that `max_refused` of `digits` are
    refused, no more, and how far it was lowered (negative: raised). Lowered when more would be
    refused, raised when fewer: every model answers at the same rate of refused digits, so a
    fine-tune that moved the not-a-digit output against every drawing (a few corrections' labels
    push it down everywhere: docs/results.md, "The gate's sign test") keeps the refusal its features
    allow instead of losing it to the shift."""
    if getattr(net, "classes", 10) <= NOT_A_DIGIT or not len(digits):
        return net, 0.0
    margins = refusal_margins(net, digits.images).sort(descending=True).values
    allowed = int(max_refused * len(digits))
    if allowed >= len(margins):
        return net, 0.0
    shift = float(margins[allowed]) + 1e-3  # the first refusal past those allowed, just not refused
    limited = copy.deepcopy(net)
    with torch.no_grad():
        limited.head[3].bias[NOT_A_DIGIT] -= shift
    return limited, shift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="an 11-class model file")
    parser.add_argument("--out", type=Path, required=True, help="where to write the limited model")
    parser.add_argument("--blend-from", type=Path, default=None, help="blend from this model's weights to --model's first (default: no blend)")
    parser.add_argument("--keep", type=float, default=0.5, help="with --blend-from: how far towards --model (default: %(default)s)")
    parser.add_argument("--version", default=None, help="the written model's version name (default: --model's)")
    parser.add_argument("--max-refused", type=float, default=MAX_REFUSED, help="share of MNIST validation digits that may be refused (default: %(default)s)")
    args = parser.parse_args()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    from django.conf import settings

    from recognizer.modelfile import model_load, model_save
    from training.calibration import temperature_fit
    from training.data import mnist_load, split
    from training.run_data import VALIDATION_SEED

    model = model_load(path=args.model)
    net, metadata = model.net, dict(model.metadata)
    if args.blend_from:
        start = model_load(path=args.blend_from)
        net = blend(start.net, net, keep=args.keep)
        metadata["blend_of"] = f"{args.keep} of the way from {start.version} to {model.version}"
    if args.version:
        metadata["version"] = args.version
    _, val = split(mnist_load(data_dir=Path(settings.MNIST_DIR), train=True), holdout=5000, seed=VALIDATION_SEED)
    net, lower = refusal_bias_limit(net=net, digits=val, max_refused=args.max_refused)
    temperature = temperature_fit(logits=logits(net, val.images), labels=val.labels)
    metadata = {**metadata, "temperature": round(temperature, 4), "refusal_bias_lowered": round(lower, 4)}
    model_save(net=net, metadata=metadata, path=args.out)
    print(f"not-a-digit bias lowered by {lower:.3f}; temperature {temperature:.4f} (was {model.temperature:.4f}); written {args.out}")


if __name__ == "__main__":
    main()
