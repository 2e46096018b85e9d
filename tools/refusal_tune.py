"""Teach "not a digit" from real handwriting: a short fine-tune of the net's last stage and head.

The not-a-digit output fitted alone on the frozen features (tools.refusal_head) refuses about
half of the held-out writers' characters and a quarter of a held-out alphabet (docs/results.md,
"Not a digit from real handwriting"): the pooled features of a digit net do not tell a stranger's
Korean or Greek from a digit. Here the first two stages stay frozen (the digits' strokes are read
as before) and the third stage, batch norm's statistics kept, learns from the training writers'
real characters (training.nn.omniglot) beside the fonts, scribbles and shapes (training.nn.negatives),
while distillation from the starting model on MNIST keeps the digits where they were. Then, as
training.steps.refusal does, the not-a-digit bias is lowered until at most `RunOptions.max_refused` of MNIST's
validation digits are refused, and the temperature is fitted again.

    python -m tools.refusal_tune --out /tmp/tuned.safetensors [--epochs 3] [--real-copies 6]

Made offline because it takes longer than a default retrain may (on the
project's shared 2-core machine, 20 minutes for 3 epochs); shipped with the command that made it.
"""

import argparse
import os
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where to write the model file")
    parser.add_argument("--base", type=Path, default=None, help="the 11-class model to start from (default: the shipped model)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--mnist-per-epoch", type=int, default=12_000)
    parser.add_argument("--real-copies", type=int, default=6, help="layouts of each training writer's character an epoch (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--distill", type=float, default=0.9, help="weight of distillation on MNIST (default: %(default)s)")
    parser.add_argument("--frozen-stages", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", default=None, help="the written model's version (default: <time>-realneg)")
    args = parser.parse_args()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    from django.conf import settings
    from django.utils import timezone

    from recognizer.modelfile import model_load, model_save
    from recognizer.net import stages_freeze
    from training.nn.augment import Augment
    from training.nn.calibration import temperature_fit
    from training.nn.data import Digits, mnist_load, split
    from training.nn.negatives import negatives_train
    from training.nn.omniglot import omniglot_train
    from training.steps.publish import model_metadata_read
    from training.options import AUGMENT, RunOptions
    from training.steps.refusal import refusal_bias_limit
    from training.nn.inference import logits
    from training.nn.trainer import FitConfig, fit

    started = time.perf_counter()
    base = model_load(path=args.base or settings.SHIPPED_MODEL)
    train, val = split(mnist_load(data_dir=Path(settings.MNIST_DIR), train=True), count=RunOptions.val_size, seed=RunOptions.validation_seed)
    made, real = negatives_train().digits, omniglot_train(copies=args.real_copies)
    negatives = Digits.concat([made, real])
    print(f"fine-tuning {base.version}: {args.epochs} epochs of {args.mnist_per_epoch} MNIST, {len(made)} made and {len(real)} real negatives", flush=True)
    net = base.net
    stages_freeze(net, stages=args.frozen_stages)
    config = FitConfig(
        epochs=args.epochs, batch_size=128, lr=args.lr, mnist_per_epoch=args.mnist_per_epoch, distill=args.distill,
        freeze_bn=True, bf16=False, seed=args.seed, device="cpu", progress=False, weight_decay=RunOptions.weight_decay,
        label_smoothing=RunOptions.label_smoothing, softening=RunOptions.softening, warmup_share=RunOptions.warmup_share,
    )  # fmt: skip
    # The negatives follow their label, not the teacher: it refuses few real characters.
    fit(
        net, mnist=train, extra=negatives, extra_repeats=1, val=val, augment=Augment(**{**AUGMENT, "styles": 0.5}), config=config, teacher=base.net,
        on_epoch=lambda report, _: print(f"epoch {report.epoch}: loss {report.loss:.4f}, MNIST validation {report.val_accuracy:.2%}, {report.seconds:.0f} s", flush=True) or {},
    )  # fmt: skip
    # The last epoch, not the best by MNIST validation: the negatives are what it is for.
    tuned, lowered = refusal_bias_limit(net=net.cpu().eval(), digits=val, max_refused=RunOptions.max_refused)
    temperature = temperature_fit(logits=logits(tuned, val.images), labels=val.labels)
    now = timezone.now()
    metadata = {
        **model_metadata_read(base.metadata),
        "version": args.version or f"{now:%Y%m%d-%H%M%S}-realneg",
        "trained_at": now.isoformat(timespec="seconds"),
        "base_version": base.version,
        "temperature": round(temperature, 4),
        "refusal_bias_lowered": round(lowered, 4),
        "refusal": f"tools.refusal_tune: last stage and head fine-tuned on real handwriting (Omniglot's training writers) and made negatives, {args.epochs} epochs",
    }
    model_save(net=tuned, metadata=metadata, path=args.out)
    print(f"bias lowered by {lowered:.3f}; temperature {temperature:.4f}; written {args.out} (version {metadata['version']}); {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
