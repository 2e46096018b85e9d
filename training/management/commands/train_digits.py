"""manage.py train_digits: train the model on MNIST plus the users' corrections, and publish it."""

import json
import time
from argparse import ArgumentTypeError
from dataclasses import fields

import torch
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recognizer.registry import ModelUnavailable
from training.augment import Augment
from training.data import MnistUnavailable
from training.services import RunOptions, training_run_execute


def augment_overrides(text: str) -> dict[str, object]:
    """"styles=0,elastic=0.5" -> {"styles": 0.0, "elastic": 0.5}, checked against Augment."""
    known = {f.name: f for f in fields(Augment)}
    overrides: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in known or not value:
            raise ArgumentTypeError(f"expected name=value with name in {', '.join(known)}; got {item!r}")
        try:
            overrides[name] = tuple(map(float, value.split(":"))) if ":" in value else float(value)
        except ValueError:
            raise ArgumentTypeError(f"{name} needs a number (or low:high), not {value!r}") from None
    return overrides


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ArgumentTypeError("must be a positive integer")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise ArgumentTypeError("must be at least 0 and below 1")
    return value


class Command(BaseCommand):
    help = (
        "Train the digit model on MNIST (with augmentation) plus the corrections people made on "
        "the site, evaluate it against the active model, and publish it: it becomes the active "
        "model unless it is worse on the MNIST test set by more than --tolerance."
    )

    def add_arguments(self, parser):
        parser.add_argument("--epochs", type=positive_int, default=10, help="passes over the training data (default: %(default)s)")
        parser.add_argument("--batch-size", type=positive_int, default=128, help="images per optimiser step (default: %(default)s)")
        parser.add_argument(
            "--lr", type=float, default=None,
            help="peak learning rate of the one-cycle schedule (default: 3e-3 with --from-scratch, 1e-3 when fine-tuning)",
        )  # fmt: skip
        parser.add_argument("--from-scratch", action="store_true", help="start from random weights (default: fine-tune the active model)")
        parser.add_argument("--width", type=positive_int, default=32, help="net width, with --from-scratch (default: %(default)s)")
        parser.add_argument("--data-dir", default=str(settings.MNIST_DIR), help="MNIST in torchvision's layout; downloaded there if missing (default: %(default)s)")
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto takes cuda when there is one (default: %(default)s)")
        parser.add_argument("--seed", type=int, default=0, help="seed for data order, augmentation and init (default: %(default)s)")
        parser.add_argument("--limit", type=positive_int, default=None, help="train on only N MNIST images, for quick runs (default: all)")
        parser.add_argument("--val-size", type=positive_int, default=5000, help="MNIST training images held out to pick the best epoch (default: %(default)s)")
        parser.add_argument("--augment", type=augment_overrides, default={}, help="augmentation overrides, e.g. styles=0,elastic=0.5 (default: none; see training/augment.py)")
        parser.add_argument("--no-feedback", action="store_true", help="train on MNIST only (default: MNIST plus corrections)")
        parser.add_argument("--approved-only", action="store_true", help="only approved corrections (default: every one not rejected)")
        parser.add_argument(
            "--feedback-share", type=share, default=0.1,
            help="share of each epoch made of corrections, oversampled at most 100 times each (default: %(default)s)",
        )  # fmt: skip
        parser.add_argument("--holdout", type=share, default=0.2, help="share of corrections never trained on, to evaluate with (default: %(default)s)")
        parser.add_argument("--tolerance", type=float, default=0.2, help="MNIST test points the new model may lose and still be promoted (default: %(default)s)")
        parser.add_argument("--force", action="store_true", help="promote the new model whatever the gate says (default: off)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar, for logs (default: progress bar)")

    def handle(self, *args, **opts):
        if opts["device"] == "cuda" and not torch.cuda.is_available():
            raise CommandError("--device cuda: no CUDA device is available here")
        device = opts["device"] if opts["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        lr = opts["lr"] if opts["lr"] is not None else (3e-3 if opts["from_scratch"] else 1e-3)
        options = RunOptions(
            epochs=opts["epochs"], batch_size=opts["batch_size"], lr=lr, from_scratch=opts["from_scratch"],
            width=opts["width"], data_dir=opts["data_dir"], device=device, seed=opts["seed"], limit=opts["limit"],
            val_size=opts["val_size"], augment=opts["augment"], use_feedback=not opts["no_feedback"],
            approved_only=opts["approved_only"], feedback_share=opts["feedback_share"], holdout=opts["holdout"],
            tolerance=opts["tolerance"], force=opts["force"], progress=not opts["no_progress"],
        )  # fmt: skip
        started = time.perf_counter()
        try:
            run = training_run_execute(options=options, log=self.stdout.write)
        except (MnistUnavailable, ModelUnavailable) as error:
            raise CommandError(str(error)) from error
        style = self.style.SUCCESS if run.status == run.Status.PROMOTED else self.style.WARNING
        self.stdout.write(style(f"{run.get_status_display()}: model {run.model_version}. {run.decision}"))
        self.stdout.write(f"run {run.pk} took {time.perf_counter() - started:.0f} s; options: {json.dumps(run.options)}")
