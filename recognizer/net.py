"""The digit classifier: a small VGG-style CNN with batch norm.

Three stages of 3x3 convolutions (28 -> 14 -> 7 pixels), then global average pooling. The
average pooling keeps the head tiny and makes the net care about which strokes are present
more than where exactly they sit, which helps on drawings that MNIST's writers never made.
`width` scales every stage; it is saved with the weights so a file always rebuilds its net.
"""

import torch
from torch import nn

from recognizer.preprocessing import MEAN, SIZE, STD


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DigitNet(nn.Module):
    def __init__(self, width: int = 32, dropout: float = 0.2):
        super().__init__()
        w = width
        self.width = width
        self.features = nn.Sequential(
            *conv_bn(1, w // 2), *conv_bn(w // 2, w), nn.MaxPool2d(2),  # 28 -> 14
            *conv_bn(w, 2 * w), *conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),  # 14 -> 7
            *conv_bn(2 * w, 4 * w), *conv_bn(4 * w, 4 * w),  # 7x7, each unit sees most of the digit
        )  # fmt: skip
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) normalised images -> (N, 10) logits."""
        return self.head(self.features(x))


def normalize_tensor(images: torch.Tensor) -> torch.Tensor:
    """recognizer.preprocessing.normalize for torch tensors (training, evaluation): uint8
    (..., 28, 28) or float in [0, 1] -> (N, 1, 28, 28)."""
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    return ((images - MEAN) / STD).reshape(-1, 1, SIZE, SIZE)
