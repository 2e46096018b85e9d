"""The refusal step: how readily a model says "not a digit", its bias set so that digits are almost
never refused.

A model learns "not a digit" from letters, scribbles and shapes (training.nn.negatives), and then
refuses some real digits too: after a fine-tune, 18 of MNIST's 5,000 validation images
(docs/results.md, "Not a digit"). A person who drew a digit and is told it is none has met the
worst answer the site gives, so after fitting, the not-a-digit output's bias is set so that
`RunOptions.max_refused` of the validation digits are refused, no more (lowered, or raised after a
fine-tune that moved it down). Among the digits nothing changes; only the line between "a digit"
and "not a digit" moves.
"""

import copy
from collections.abc import Callable
from dataclasses import replace

import torch

from recognizer.labels import NOT_A_DIGIT
from recognizer.net import DigitNet
from training.nn.data import Digits
from training.nn.inference import logits
from training.nn.trainer import FitResult


def refusal_margins(net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """How far "not a digit" is above the likeliest digit, in logits, for each image: > 0 refuses."""
    z = logits(net, images)
    return z[:, NOT_A_DIGIT] - z[:, :NOT_A_DIGIT].max(dim=1).values


def refusal_bias_limit(*, net: DigitNet, digits: Digits, max_refused: float) -> tuple[DigitNet, float]:
    """A copy of `net` whose not-a-digit bias is moved so that `max_refused` of `digits` are
    refused, no more, and how far it was lowered (negative: raised). Lowered when more would be
    refused, raised when fewer: every model answers at the same rate of refused digits, so a
    fine-tune that moved the not-a-digit output against every drawing (a few corrections' labels
    push it down everywhere: docs/results.md, "The gate's sign test") keeps the refusal its features
    allow instead of losing it to the shift."""
    if getattr(net, "classes", 10) <= NOT_A_DIGIT or not len(digits):
        return net, 0.0
    margins = refusal_margins(net, digits.images).sort(descending=True).values
    allowed = int(max_refused * len(digits))
    if allowed >= len(margins):
        return net, 0.0
    shift = float(margins[allowed]) + 1e-3  # the first refusal past those allowed, just not refused
    limited = copy.deepcopy(net)
    with torch.no_grad():
        limited.head[3].bias[NOT_A_DIGIT] -= shift
    return limited, shift


def fit_refusal_limited(*, result: FitResult, digits: Digits, max_refused: float, say: Callable[[str], None]) -> FitResult:
    """The fit's best net with its not-a-digit bias limited on `digits` (MNIST validation)."""
    limited, lowered = refusal_bias_limit(net=result.best, digits=digits, max_refused=max_refused)
    if lowered:
        say(f"'not a digit' made {'less' if lowered > 0 else 'more'} ready by {abs(lowered):.2f} logits, so that {max_refused:.2%} of MNIST validation is refused, no more")
    return replace(result, best=limited)
