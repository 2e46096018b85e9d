"""Teach a 10-class digit model "not a digit" without touching how it reads digits.

Fine-tuning on the negatives moved the features the digits rely on: pen digits 98.52% -> 97.99%
even with the first two stages frozen (docs/results.md, "Not a digit"). Here the network and
its ten digit outputs stay exactly as they were; the eleventh output alone, a linear function
of the pooled features, is fitted by logistic regression against each image's own top digit
logit (what it must beat): "not a digit" for the training negatives (real handwriting of
Omniglot's training writers, training.nn.omniglot, and the made ones, training.nn.negatives; twice: as
drawn, and through training's own augmentation) against every MNIST training digit.
Features are read once, so the fit takes seconds after that. Among the digits no answer can
change; a digit can only be refused, and the bias is then lowered until at most
`RunOptions.max_refused` of MNIST's validation digits are (training.steps.refusal).

    python -m tools.refusal_head --out recognizer/weights/digitnet.safetensors   # the shipped model
"""

import argparse
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from recognizer.labels import NOT_A_DIGIT
from recognizer.net import DigitNet, net_with_classes
from recognizer.net import normalize_tensor as normalize


@torch.inference_mode()
def features(net: DigitNet, images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8, or (N, 1, 28, 28) float in [0, 1] -> (N, 4 * width) pooled features."""
    net = net.eval()
    out = []
    for chunk in images.split(512):
        x = chunk.unsqueeze(1).float() / 255.0 if chunk.dim() == 3 else chunk
        out.append(net.head[:2](net.features(normalize(x))))
    return torch.cat(out)


def refusal_row_fit(*, x: torch.Tensor, top: torch.Tensor, y: torch.Tensor, steps: int = 300) -> tuple[torch.Tensor, float]:
    """The "not a digit" output's weights and bias: logistic regression of its margin over `top`
    (each image's likeliest digit's logit) on features `x`, `y` 1 for a negative; the two sides
    weighted equally."""
    x, y, top = x.double(), y.double(), top.double()
    weight = torch.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (1 - y).sum()))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = (F.binary_cross_entropy_with_logits(x @ w + b - top, y, reduction="none") * weight).mean() + 1e-4 * (w * w).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return w.detach().float(), float(b.detach())


def net_with_refusal(*, net: DigitNet, weight: torch.Tensor, bias: float) -> DigitNet:
    """`net` with a "not a digit" output of `weight` and `bias`; every digit output as it was."""
    wide = net_with_classes(net)
    with torch.no_grad():
        wide.head[3].weight[NOT_A_DIGIT] = weight
        wide.head[3].bias[NOT_A_DIGIT] = bias
    return wide.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where to write the model file")
    parser.add_argument("--base", type=Path, default=None, help="the 10-class model to start from (default: the shipped model)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the negatives' augmentation (default: %(default)s)")
    parser.add_argument("--negatives", choices=("all", "real", "made"), default="all", help="real handwriting, made ones, or both (default: %(default)s)")
    args = parser.parse_args()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    from django.conf import settings
    from django.utils import timezone

    from recognizer.modelfile import model_load, model_save
    from training.nn.augment import Augment
    from training.nn.calibration import temperature_fit
    from training.nn.data import Digits, mnist_load, split
    from training.nn.inference import logits
    from training.nn.negatives import negatives_train
    from training.nn.omniglot import omniglot_train
    from training.options import AUGMENT, RunOptions
    from training.steps.publish import model_metadata_read
    from training.steps.refusal import refusal_bias_limit

    base = model_load(path=args.base or settings.SHIPPED_MODEL)
    net = base.net.eval()
    train, val = split(mnist_load(data_dir=Path(settings.MNIST_DIR), train=True), count=RunOptions.val_size, seed=RunOptions.validation_seed)
    made = {"real": [], "made": [negatives_train().digits], "all": [negatives_train().digits]}[args.negatives]
    negatives = Digits.concat(made + ([] if args.negatives == "made" else [omniglot_train()]))
    bent = Augment(**{**AUGMENT, "styles": 0.0})(negatives.images.unsqueeze(1).float() / 255.0, negatives.labels, torch.Generator().manual_seed(args.seed))
    print(f"reading features: {len(train)} MNIST training images, {len(negatives)} negatives twice (as drawn, augmented)")
    x = torch.cat([features(net, train.images), features(net, negatives.images), features(net, bent)])
    y = torch.cat([torch.zeros(len(train)), torch.ones(2 * len(negatives))])
    with torch.inference_mode():
        top = net.head[3](x).max(dim=1).values
    weight, bias = refusal_row_fit(x=x, top=top, y=y)
    wide, lowered = refusal_bias_limit(net=net_with_refusal(net=net, weight=weight, bias=bias), digits=val, max_refused=RunOptions.max_refused)
    refused = float((x[y == 1] @ weight + bias - lowered > top[y == 1]).float().mean())
    temperature = temperature_fit(logits=logits(wide, val.images), labels=val.labels)
    metadata = {
        **model_metadata_read(base.metadata),
        "version": f"{timezone.now():%Y%m%d-%H%M%S}-refusal",
        "trained_at": timezone.now().isoformat(timespec="seconds"),
        "base_version": base.version,
        "temperature": round(temperature, 4),
        "refusal": f"the not-a-digit output fitted alone (tools.refusal_head, negatives: {args.negatives}); the digit outputs are the base model's",
    }
    model_save(net=wide, metadata=metadata, path=args.out)
    print(f"bias lowered by {lowered:.3f}; training negatives refused {refused:.1%}; temperature {temperature:.4f} (base {base.temperature:.4f})")
    print(f"written {args.out} (version {metadata['version']})")


if __name__ == "__main__":
    main()
