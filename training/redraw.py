"""The users' drawings drawn again from their strokes, each a little differently.

A correction is one drawing; seen a hundred times an epoch under image augmentation it is still
one picture turned and stretched as a whole. Its strokes say more: how a pen made it. Moving
each stroke a little on its own (shifted, turned, stretched), wobbling the path and shortening
its ends gives the variants the same writer would make drawing the same digit again: a 4 whose
two strokes meet a little higher, a 9 with a shorter tail. Each variant is drawn with the very
function that serves (`recognizer.preprocessing.strokes_to_input`).
"""

import numpy as np
import torch

from recognizer.preprocessing import strokes_to_input
from training.data import Digits

SHIFT = 0.06  # of the drawing's size, either way, per stroke
TURN = 8.0  # degrees, either way, per stroke
STRETCH = 0.1  # change of a stroke's width and height, either way, each on its own
WOBBLE = 0.025  # of the drawing's size: a smooth displacement along the path
TRIM = 0.08  # share of a stroke's points that may go from each end


def strokes_redraw(strokes: list[np.ndarray], *, rng: np.random.Generator) -> list[np.ndarray]:
    """One variant of `strokes` (each an (n, 2) array of x, y points): the same digit, drawn
    again by the same hand."""
    points = np.concatenate(strokes)
    size = max(float((points.max(axis=0) - points.min(axis=0)).max()), 1.0)
    redrawn = []
    for stroke in strokes:
        stroke = _trim(stroke, rng)
        centre = stroke.mean(axis=0)
        angle = np.radians(rng.uniform(-TURN, TURN))
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        stretch = 1 + rng.uniform(-STRETCH, STRETCH, size=2)
        moved = (stroke - centre) @ turn.T * stretch + centre + rng.uniform(-SHIFT, SHIFT, size=2) * size
        redrawn.append(moved + _wobble(moved, rng) * size)
    return redrawn


def _trim(stroke: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A stroke a little shorter at either end; one of fewer than 5 points as it is."""
    if len(stroke) < 5:
        return stroke
    most = int(len(stroke) * TRIM)
    start, end = rng.integers(0, most + 1), len(stroke) - rng.integers(0, most + 1)
    return stroke[start:end]


def _wobble(stroke: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth displacement along the path: one slow sine a coordinate, over the stroke's length."""
    steps = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)]) / max(float(steps.sum()), 1e-9)
    cycles = rng.uniform(0.5, 1.5, size=2)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    amount = rng.uniform(-WOBBLE, WOBBLE, size=2)
    return amount * np.sin(2 * np.pi * cycles * along[:, None] + phase)


def redrawn_inputs(strokes: list[np.ndarray], *, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` 28x28 inputs (ink bright) of variants of one drawing, as the site would read
    them; a variant that comes out too small to read is left out."""
    inputs = (strokes_to_input(strokes_redraw(strokes, rng=rng)).image for _ in range(count))
    return [image for image in inputs if image is not None]


def samples_redraw(*, samples, count: int, seed: int) -> tuple[Digits, torch.Tensor]:
    """`count` variants of each sample (feedback.models.Sample) that has strokes, and for each
    variant the index of its sample in `samples`. The same variants for the same seed."""
    images, labels, owners = [], [], []
    for index, sample in enumerate(samples):
        if not (count and sample.strokes):
            continue
        variants = redrawn_inputs(sample.stroke_arrays(), count=count, rng=np.random.default_rng([seed, sample.pk]))
        images += variants
        labels += [sample.label] * len(variants)
        owners += [index] * len(variants)
    return Digits.from_arrays(images, labels), torch.tensor(owners, dtype=torch.long)
