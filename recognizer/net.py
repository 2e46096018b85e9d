"""The digit classifier: a small VGG-style CNN with batch norm.

Three stages of 3x3 convolutions (28 -> 14 -> 7 pixels), then global average pooling. The
average pooling keeps the head tiny and makes the net care about which strokes are present
more than where exactly they sit, which helps on drawings that MNIST's writers never made.
`width` scales every stage; it is saved with the weights so a file always rebuilds its net.
The head has one output per class (recognizer.labels): the ten digits, then "not a digit".
Files made before that class existed have ten; `classes_of` reads the count from the weights.
"""

import copy

import torch
from torch import nn

from recognizer.labels import CLASSES
from recognizer.preprocessing import MEAN, SIZE, STD


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DigitNet(nn.Module):
    def __init__(self, width: int = 32, dropout: float = 0.2, classes: int = CLASSES):
        super().__init__()
        w = width
        self.width, self.classes = width, classes
        self.features = nn.Sequential(
            *conv_bn(1, w // 2), *conv_bn(w // 2, w), nn.MaxPool2d(2),  # 28 -> 14
            *conv_bn(w, 2 * w), *conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),  # 14 -> 7
            *conv_bn(2 * w, 4 * w), *conv_bn(4 * w, 4 * w),  # 7x7, each unit sees most of the digit
        )  # fmt: skip
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) normalised images -> (N, classes) logits."""
        return self.head(self.features(x))


STAGE_ENDS = (6, 13, 19)  # where each stage's modules end in `features` (its max pool included)


def stages_freeze(net: DigitNet, *, stages: int) -> None:
    """Keep the weights of the first `stages` stages as they are: no gradient reaches them."""
    for parameter in net.features[: STAGE_ENDS[stages - 1] + 1 if stages else 0].parameters():
        parameter.requires_grad_(False)


HEAD_WEIGHT = "head.3.weight"  # the last layer's (classes, 4 * width) weights in a state dict


def classes_of(tensors: dict[str, torch.Tensor]) -> int:
    """How many classes a DigitNet's weights answer: 10 for files made before "not a digit"."""
    return int(tensors[HEAD_WEIGHT].shape[0])


def net_with_classes(net: DigitNet, *, classes: int = CLASSES) -> DigitNet:
    """A copy of `net` answering `classes` classes: the outputs it had keep their weights, a new
    one starts silent (zero weights, a bias far below the others), so that the copy reads every
    image as `net` did until it is trained, and distilling from it teaches "never this class"."""
    widened = copy.deepcopy(net)
    if net.classes == classes:
        return widened
    if classes < net.classes:
        raise ValueError(f"a {net.classes}-class net cannot lose classes (asked for {classes})")
    old: nn.Linear = net.head[3]
    new = nn.Linear(old.in_features, classes)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[: net.classes] = old.weight
        new.bias.fill_(float(old.bias.min()) - 10.0)
        new.bias[: net.classes] = old.bias
    widened.head[3], widened.classes = new, classes
    return widened


def normalize_tensor(images: torch.Tensor) -> torch.Tensor:
    """recognizer.preprocessing.normalize for torch tensors (training, evaluation): uint8
    (..., 28, 28) or float in [0, 1] -> (N, 1, 28, 28)."""
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    return ((images - MEAN) / STD).reshape(-1, 1, SIZE, SIZE)
