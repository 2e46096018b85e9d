"""Training data: MNIST from disk (downloaded when missing) and the users' corrections.

Everything is held as uint8 tensors of 28x28 images, ink bright, exactly what
`recognizer.preprocessing.to_model_input` makes from a drawing: the corrections stored by the
site and MNIST's digits are the same kind of image, so they mix without any conversion.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import MNIST

MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


class MnistUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Digits:
    images: torch.Tensor  # (N, 28, 28) uint8, ink bright
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor | slice) -> "Digits":
        return Digits(self.images[index], self.labels[index])

    @staticmethod
    def concat(parts: list["Digits"]) -> "Digits":
        return Digits(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))

    @staticmethod
    def from_arrays(images: list[np.ndarray], labels: list[int]) -> "Digits":
        if not images:
            return Digits(torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
        return Digits(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64))


def mnist_load(*, data_dir: Path, train: bool) -> Digits:
    """MNIST's training (60,000) or test (10,000) set, from `data_dir/MNIST/raw`."""
    try:
        dataset = MNIST(str(data_dir), train=train, download=True)
    except Exception as error:  # torchvision raises URLError, RuntimeError, ... when offline
        raw = Path(data_dir) / "MNIST" / "raw"
        reason = " ".join(str(error).split())  # torchvision's message spans several lines
        raise MnistUnavailable(
            f"MNIST is not in {raw} and could not be downloaded ({reason}). "
            f"Put the four original files there ({', '.join(MNIST_FILES)}), "
            f"for example: mkdir -p {data_dir} && cp -r ../shared/mnist/MNIST {data_dir}/"
        ) from error
    return Digits(dataset.data, dataset.targets)


def split(digits: Digits, *, holdout: int, seed: int) -> tuple[Digits, Digits]:
    """A seeded random split: (the rest, `holdout` digits)."""
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))
    return digits.take(order[holdout:]), digits.take(order[:holdout])
