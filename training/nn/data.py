"""Training data: MNIST from disk (downloaded when missing), and the users' drawings in the
same form (training.steps.data chooses what a run trains on and is judged by).

Everything is held as uint8 tensors of 28x28 images, ink bright, exactly what
`recognizer.preprocessing.to_model_input` makes from a drawing: the corrections stored by the
site and MNIST's digits are the same kind of image, so they mix without any conversion.
"""

import hashlib
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


# Each unpacked file: its magic number and item count (idx format: a 16-byte header then
# 28x28 bytes per image, or an 8-byte header then one byte per label).
MNIST_UNPACKED = {
    "train-images-idx3-ubyte": (2051, 60_000),
    "train-labels-idx1-ubyte": (2049, 60_000),
    "t10k-images-idx3-ubyte": (2051, 10_000),
    "t10k-labels-idx1-ubyte": (2049, 10_000),
}


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
        if corrupt := mnist_corrupt_files(raw=raw):
            raise MnistUnavailable(
                f"MNIST file{'s' if len(corrupt) > 1 else ''} corrupt: {'; '.join(corrupt)}. "
                f"Delete {'them' if len(corrupt) > 1 else 'it'} and run again: a .gz file is downloaded again "
                f"(or copy it from ../shared/mnist/MNIST/raw/), an unpacked file is unpacked again from its .gz."
            ) from error
        raise MnistUnavailable(
            f"MNIST is not in {raw} and could not be downloaded ({reason}). "
            f"Put the four original files there ({', '.join(MNIST_FILES)}), "
            f"for example: mkdir -p {data_dir} && cp -r ../shared/mnist/MNIST {data_dir}/"
        ) from error
    return Digits(dataset.data, dataset.targets)


def mnist_corrupt_files(*, raw: Path) -> list[str]:
    """Each MNIST file in `raw` that is there but damaged, with what is wrong with it."""
    corrupt = []
    for gz_name, md5 in MNIST.resources:
        gz = raw / gz_name
        if gz.is_file() and hashlib.md5(gz.read_bytes()).hexdigest() != md5:
            corrupt.append(f"{gz} is not the original file (its MD5 differs)")
        unpacked = raw / gz_name.removesuffix(".gz")
        if unpacked.is_file():
            magic, count = MNIST_UNPACKED[unpacked.name]
            header = 16 if magic == 2051 else 8
            expected = header + count * (28 * 28 if magic == 2051 else 1)
            with open(unpacked, "rb") as file:
                found_magic = int.from_bytes(file.read(4), "big")
            size = unpacked.stat().st_size
            if found_magic != magic or size != expected:
                corrupt.append(f"{unpacked} is damaged ({size:,} bytes, {expected:,} expected)")
    return corrupt


def split(digits: Digits, *, count: int, seed: int) -> tuple[Digits, Digits]:
    """A seeded random split: (the rest, `count` digits set apart)."""
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(seed))
    return digits.take(order[count:]), digits.take(order[:count])

