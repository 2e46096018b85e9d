"""How a model reads what judges a run: MNIST test, the pen guard set and the users' held-out drawings."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from training.data import Digits
from training.run_data import RunData
from training.text import count_text
from training.trainer import predictions


@dataclass(frozen=True)
class Readings:
    """The digit one model reads in each image of the judging sets."""

    mnist: np.ndarray
    corrections: np.ndarray
    confirmed: np.ndarray
    pen: np.ndarray


def readings_take(*, net: torch.nn.Module, data: RunData, device: str, who: str, say: Callable[[str], None], progress: bool = False) -> Readings:
    say(f"evaluating {who} on {len(data.mnist_test)} MNIST test images, {len(data.pen_guard)} pen guard drawings and the users' held-out drawings")
    readings = Readings(
        mnist=predictions(net, data.mnist_test, device=device, desc=f"reading MNIST test ({who})" if progress else "").numpy(),
        corrections=predictions(net, data.corrections_test, device=device).numpy(),
        confirmed=predictions(net, data.confirmed_test, device=device).numpy(),
        pen=predictions(net, data.pen_guard, device=device).numpy(),
    )
    say(
        f"{who}: MNIST test {count_text(accuracy(readings.mnist, data.mnist_test), len(data.mnist_test))}, "
        f"pen guard {count_text(accuracy(readings.pen, data.pen_guard), len(data.pen_guard))}, "
        f"held-out corrections {count_text(accuracy(readings.corrections, data.corrections_test), len(data.corrections_test))}, "
        f"held-out confirmed {count_text(accuracy(readings.confirmed, data.confirmed_test), len(data.confirmed_test))}"
    )
    return readings


def right(predicted: np.ndarray, digits: Digits) -> int:
    return int((predicted == digits.labels.numpy()).sum())


def accuracy(predicted: np.ndarray, digits: Digits) -> float | None:
    """Share read right; None when there was nothing to read."""
    return right(predicted, digits) / len(digits) if len(digits) else None


def confusion(predicted: np.ndarray, digits: Digits) -> list[list[int]]:
    """10x10 counts: row the true digit, column the guess."""
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (digits.labels.numpy(), predicted), 1)
    return matrix.tolist()
