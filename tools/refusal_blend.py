"""Limit an 11-class model file's "not a digit" bias (training.steps.refusal), optionally blended
first: a one-off command that made the shipped model, kept with the command that made it.

    python -m tools.refusal_blend --model candidate.safetensors --out recognizer/weights/digitnet.safetensors
    python -m tools.refusal_blend --model tuned.safetensors --blend-from head.safetensors --keep 0.5 --out ...

--blend-from takes `keep` of the way from another model's weights to --model's first (as the gate's
fallback blends do): how the shipped model was made, halfway between the not-a-digit output fitted
alone (tools.refusal_head, digits untouched) and a fine-tune on the negatives, which refuses more
but cost MNIST test 0.13 points (docs/results.md, "Not a digit").
"""

import argparse
import os
from pathlib import Path


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    from django.conf import settings

    from recognizer.modelfile import model_load, model_save
    from training.nn.calibration import temperature_fit
    from training.nn.data import mnist_load, split
    from training.nn.inference import blend, logits
    from training.options import RunOptions
    from training.steps.publish import model_metadata_read
    from training.steps.refusal import refusal_bias_limit

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="an 11-class model file")
    parser.add_argument("--out", type=Path, required=True, help="where to write the limited model")
    parser.add_argument("--blend-from", type=Path, default=None, help="blend from this model's weights to --model's first (default: no blend)")
    parser.add_argument("--keep", type=float, default=0.5, help="with --blend-from: how far towards --model (default: %(default)s)")
    parser.add_argument("--version", default=None, help="the written model's version name (default: --model's)")
    parser.add_argument("--max-refused", type=float, default=RunOptions.max_refused, help="share of MNIST validation digits that may be refused (default: %(default)s)")
    args = parser.parse_args()

    model = model_load(path=args.model)
    net, metadata = model.net, model_metadata_read(model.metadata)
    if args.blend_from:
        start = model_load(path=args.blend_from)
        net = blend(start.net, net, keep=args.keep)
        metadata["blend_of"] = f"{args.keep} of the way from {start.version} to {model.version}"
    if args.version:
        metadata["version"] = args.version
    _, val = split(mnist_load(data_dir=Path(settings.MNIST_DIR), train=True), count=RunOptions.val_size, seed=RunOptions.validation_seed)
    net, lower = refusal_bias_limit(net=net, digits=val, max_refused=args.max_refused)
    temperature = temperature_fit(logits=logits(net, val.images), labels=val.labels)
    metadata = {**metadata, "temperature": round(temperature, 4), "refusal_bias_lowered": round(lower, 4)}
    model_save(net=net, metadata=metadata, path=args.out)
    print(f"not-a-digit bias lowered by {lower:.3f}; temperature {temperature:.4f} (was {model.temperature:.4f}); written {args.out}")


if __name__ == "__main__":
    main()
