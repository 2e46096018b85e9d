"""Reading with a net: logits, probabilities and predictions in batches, a net's accuracy on a
set of digits, and blends of two nets' weights. What the gate, the evaluation, the refusal limit,
publishing and the training loop's own validation read with; torch only."""

import copy
import math

import torch
import torch.nn.functional as F
from torch.fx.experimental.optimization import fuse
from tqdm import tqdm

from recognizer.net import normalize_tensor as normalize
from training.nn.data import Digits


def reading_copy(net: torch.nn.Module, *, device: torch.device | str) -> torch.nn.Module:
    """A copy of `net` in eval mode for reading only (the teacher, every evaluation): batch norm
    folded into the convolutions (the same logits to 1e-7, a fifth faster) and channels
    last (1.6 times faster on CPU). `net` itself is left as it was."""
    return fuse(copy.deepcopy(net).eval()).to(device).to(memory_format=torch.channels_last)


@torch.inference_mode()
def logits(net: torch.nn.Module, images: torch.Tensor, *, device: torch.device | str = "cpu", desc: str = "") -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, classes) logits, in batches; a progress bar named `desc` if given. Reads
    through a copy (`reading_copy`), so `net` stays in the mode it was in."""
    classes = getattr(net, "classes", 10)
    net = reading_copy(net, device=device)
    # Chunks of 256: 40,000 images in 16 s on 2 AVX2 cores, against 21 s in chunks of 1,000.
    chunks = tqdm(images.split(256), desc=desc, disable=not desc, leave=False)
    out = [net(normalize(chunk.to(device)).contiguous(memory_format=torch.channels_last)).cpu() for chunk in chunks]
    return torch.cat(out) if out else torch.zeros(0, classes)


def probabilities(net: torch.nn.Module, images: torch.Tensor, *, device: torch.device | str = "cpu", temperature: float = 1.0, desc: str = "") -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, classes) softmax probabilities, in batches."""
    return F.softmax(logits(net, images, device=device, desc=desc) / temperature, dim=1)


def predictions(net: torch.nn.Module, digits: Digits, *, device: torch.device | str = "cpu", desc: str = "") -> torch.Tensor:
    """The class the net reads in each image, (N,) int64: a digit, or NOT_A_DIGIT."""
    return probabilities(net, digits.images, device=device, desc=desc).argmax(dim=1)


def net_accuracy(net: torch.nn.Module, digits: Digits, *, device: torch.device | str = "cpu") -> float:
    """Share of `digits` the net reads right, in [0, 1]; NaN when there are none."""
    if len(digits) == 0:
        return math.nan
    return (predictions(net, digits, device=device) == digits.labels.cpu()).float().mean().item()


def blend(start: torch.nn.Module, end: torch.nn.Module, *, keep: float) -> torch.nn.Module:
    """A copy of `end` whose weights lie `keep` of the way from `start`'s to `end`'s (batch
    norm's statistics included)."""
    mixed = copy.deepcopy(end)
    with torch.no_grad():
        for (name, value), start_value in zip(mixed.state_dict().items(), start.state_dict().values()):
            if value.is_floating_point():
                value.copy_(start_value.to(value.device) + keep * (value - start_value.to(value.device)))
    return mixed
