"""manage.py train_digits: train the model on MNIST plus the users' drawings, and publish it.

Its flags are made from training.options.RunOptions, the same options as the admin's
"Retrain now" button, with the same defaults.
"""

import json
import time
from argparse import ArgumentTypeError
from dataclasses import fields

import torch
from django.core.management.base import BaseCommand, CommandError

from recognizer.modelfile import ModelUnavailable
from training import options as run_options
from training.augment import Augment
from training.data import MnistUnavailable
from training.services import RunRefused, training_run_execute, training_run_start


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


def count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ArgumentTypeError("must be 0 or more")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise ArgumentTypeError("must be at least 0 and below 1")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ArgumentTypeError("must be between 0 and 1")
    return value


def points(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ArgumentTypeError("must be 0 or more points")
    return value


PARSERS = {
    "epochs": positive_int, "batch_size": positive_int, "width": positive_int, "val_size": positive_int,
    "mnist_per_epoch": count, "limit": count, "test_limit": count, "look_alikes": count, "lr": points, "distill": fraction, "keep": fraction, "fallback_keep": fraction,
    "feedback_share": share, "confirmed_share": share, "holdout": share, "redraws": count, "users_augment": points, "mnist_tolerance": points, "users_tolerance": points,
    "augment": augment_overrides,
}  # fmt: skip


class Command(BaseCommand):
    help = (
        "Fine-tune the active digit model (or train one from scratch) on MNIST plus the drawings "
        "people corrected or confirmed on the site, judge it against the active model on MNIST "
        "test and on the users' held-out drawings, and publish it: it becomes the active model "
        "when the held-out corrections improve and neither MNIST test nor the held-out confirmed "
        "drawings get worse beyond their tolerances. One run trains at a time."
    )

    def add_arguments(self, parser):
        run_options.add_arguments(parser, parsers=PARSERS)

    def handle(self, *args, **opts):
        if opts["device"] == "cuda" and not torch.cuda.is_available():
            raise CommandError("--device cuda: no CUDA device is available here")
        options = run_options.from_arguments(opts).resolved()
        started = time.perf_counter()
        try:
            run = training_run_start(options=options, log=self.stdout.write)
        except RunRefused as error:
            raise CommandError(str(error)) from error
        try:
            run = training_run_execute(run=run, log=self.stdout.write)
        except (MnistUnavailable, ModelUnavailable) as error:
            raise CommandError(str(error)) from error
        if run.status == run.Status.CANCELLED:
            raise CommandError(f"run {run.pk} was cancelled; nothing was published")
        style = self.style.SUCCESS if run.status == run.Status.PROMOTED else self.style.WARNING
        self.stdout.write(style(f"{run.get_status_display()}: model {run.model_version}. {run.decision}"))
        self.stdout.write(f"run {run.pk} took {time.perf_counter() - started:.0f} s; options: {json.dumps(run.options)}")
