"""The evaluate step: how a model reads what judges a run (MNIST test, the pen guard set and the
users' held-out drawings), and the active model's readings recorded on the run before it trains."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from recognizer.labels import CLASSES, NOT_A_DIGIT
from training.models import TrainingRun
from training.nn.data import Digits
from training.nn.inference import predictions
from training.options import RunOptions
from training.runs.text import count_text
from training.steps.data import RunData


@dataclass(frozen=True)
class Readings:
    """The digit one model reads in each image of the judging sets."""

    mnist: np.ndarray
    corrections: np.ndarray
    confirmed: np.ndarray
    pen: np.ndarray
    negatives: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the held-out drawings that are not digits


def readings_reader(*, data: RunData, options: RunOptions, say: Callable[[str], None]) -> Callable[[torch.nn.Module, str], Readings]:
    """`read(net, who)`: a net's readings of this run's judging sets, where the run computes."""
    return lambda net, who: readings_take(net=net, data=data, device=options.device, who=who, say=say, progress=options.progress)


def readings_take(*, net: torch.nn.Module, data: RunData, device: str, who: str, say: Callable[[str], None], progress: bool = False) -> Readings:
    say(f"evaluating {who} on {len(data.mnist_test)} MNIST test images, {len(data.pen_guard)} pen guard drawings and the users' held-out drawings")
    readings = Readings(
        mnist=predictions(net, data.mnist_test, device=device, desc=f"reading MNIST test ({who})" if progress else "").numpy(),
        corrections=predictions(net, data.corrections_test, device=device).numpy(),
        confirmed=predictions(net, data.confirmed_test, device=device).numpy(),
        pen=predictions(net, data.pen_guard, device=device).numpy(),
        negatives=predictions(net, data.negatives_test, device=device).numpy(),
    )
    say(
        f"{who}: MNIST test {count_text(predicted_accuracy(readings.mnist, data.mnist_test), len(data.mnist_test))}, "
        f"pen guard {count_text(predicted_accuracy(readings.pen, data.pen_guard), len(data.pen_guard))}, "
        f"held-out corrections {count_text(predicted_accuracy(readings.corrections, data.corrections_test), len(data.corrections_test))}, "
        f"held-out confirmed {count_text(predicted_accuracy(readings.confirmed, data.confirmed_test), len(data.confirmed_test))}, "
        f"held-out not digits answered so {count_text(predicted_accuracy(readings.negatives, data.negatives_test), len(data.negatives_test))}"
    )
    return readings


def right(predicted: np.ndarray, digits: Digits) -> int:
    return int((predicted == digits.labels.numpy()).sum())


def predicted_accuracy(predicted: np.ndarray, digits: Digits) -> float | None:
    """Share read right; None when there was nothing to read."""
    return right(predicted, digits) / len(digits) if len(digits) else None


def confusion(predicted: np.ndarray, digits: Digits) -> list[list[int]]:
    """Counts, row the true class, column the guess: 10x10 for digits only, or CLASSES x CLASSES
    when a label or a guess is NOT_A_DIGIT (reports made before it are 10x10)."""
    labels = digits.labels.numpy()
    size = CLASSES if (labels == NOT_A_DIGIT).any() or (predicted == NOT_A_DIGIT).any() else 10
    matrix = np.zeros((size, size), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix.tolist()


def active_model_record(*, run: TrainingRun, data: RunData, version: str, before: Readings | None) -> None:
    """What the run trains on and how the active model (`version`, "" for none) reads the judging
    sets (`before`), for its page while it works."""
    run.base_version = version
    run.mnist_samples, run.users_samples = len(data.mnist_train), len(data.users_train)
    run.corrections_held_out, run.confirmed_held_out = len(data.corrections_test), len(data.confirmed_test)
    if before:
        run.mnist_accuracy_before = predicted_accuracy(before.mnist, data.mnist_test)
        run.corrections_accuracy_before = predicted_accuracy(before.corrections, data.corrections_test)
        run.confirmed_accuracy_before = predicted_accuracy(before.confirmed, data.confirmed_test)
    run.save(update_fields=[
        "base_version", "mnist_samples", "users_samples", "corrections_held_out", "confirmed_held_out",
        "mnist_accuracy_before", "corrections_accuracy_before", "confirmed_accuracy_before",
    ])  # fmt: skip
