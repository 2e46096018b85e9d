"""Models to publish in tests: small nets of fixed seeds, published as named versions."""

from pathlib import Path

import torch

from recognizer.net import DigitNet
from recognizer.publishing import model_publish


def tiny_net(seed: int) -> DigitNet:
    """A small untrained DigitNet; the same for the same seed."""
    torch.manual_seed(seed)
    return DigitNet(width=8).eval()


def publish(version: str, *, seed: int = 0, activate: bool = True) -> Path:
    """Publish tiny_net(seed) as `version` (made active unless `activate` is false); trained "on" day seed + 1."""
    return model_publish(net=tiny_net(seed), metadata={"version": version, "trained_at": f"2099-01-0{seed + 1}"}, activate=activate)
