"""MNIST's handwriting drawn again with the page's pen: each digit thinned to its centre line,
traced into strokes and sent through the page's stroke path (recognizer.preprocessing).

Trained from scratch beside real handwriting that is not a digit (drawn through the stroke path),
a net learns "not MNIST's pen" instead of "not a digit": it refused 3,502 of the 7,494 real pen
digits (docs/results.md, "Not a digit from real handwriting"). These are the same people's digits
as MNIST's, drawn as the page draws, so the pen is no longer a cue. No pen digit of
../shared/pendigits is used: the benchmarks judge on those.
"""

import cv2
import numpy as np

from training.nn.data import Digits

UPSCALE = 4  # thinned at 112x112: at 28x28 a centre line is too coarse to trace
_NEIGHBOURS = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]  # P2..P9, clockwise from north


def thin(ink: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a batch of binary images (N, H, W) to lines one pixel wide."""
    image = np.pad(ink.astype(bool), ((0, 0), (1, 1), (1, 1)))
    while True:
        changed = False
        for step in (0, 1):
            p = [np.roll(image, (-dy, -dx), axis=(1, 2)) for dy, dx in _NEIGHBOURS]
            count = sum(q.astype(np.uint8) for q in p)
            # One 0 -> 1 transition around the pixel (P2, P3, ..., P9, P2): it lies on one line, not where lines meet.
            turns = sum((~p[i] & p[(i + 1) % 8]).astype(np.uint8) for i in range(8))
            p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
            if step == 0:
                away = ~(p2 & p4 & p6) & ~(p4 & p6 & p8)
            else:
                away = ~(p2 & p4 & p8) & ~(p2 & p6 & p8)
            drop = image & (count >= 2) & (count <= 6) & (turns == 1) & away
            if drop.any():
                image &= ~drop
                changed = True
        if not changed:
            return image[:, 1:-1, 1:-1]


def centre_lines(images: np.ndarray) -> np.ndarray:
    """MNIST images (N, 28, 28), uint8 ink bright -> their centre lines at UPSCALE times the size."""
    large = np.stack([cv2.resize(image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC) for image in images])
    return thin(large > 127)


def line_strokes(line: np.ndarray) -> list[np.ndarray]:
    """A one-pixel line -> strokes (x, y) that draw it: each contour of the line walks along both
    of its sides, so drawn with a pen it covers the line and nothing else."""
    contours, _ = cv2.findContours(line.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    return [np.vstack([contour[:, 0, :], contour[:1, 0, :]]).astype(np.float64) for contour in contours if len(contour)]


def pen_mnist(*, mnist: Digits, count: int, seed: int = 0) -> Digits:
    """`count` of `mnist` (at random, seeded) drawn again with the page's pen: centre lines traced,
    bent by a hand (training.nn.negatives.strokes_bend) and drawn with a line 1.5-2.8 px wide."""
    from recognizer.preprocessing import strokes_simplify, strokes_to_input
    from training.nn.negatives import strokes_bend

    rng = np.random.default_rng(seed + 11)
    chosen = rng.permutation(len(mnist))[:count]
    images, labels = [], []
    for start in range(0, len(chosen), 2000):  # thinned in batches: 2,000 at 112x112 is 25 MB
        part = chosen[start : start + 2000]
        for line, label in zip(centre_lines(mnist.images[part].numpy()), mnist.labels[part].tolist()):
            if not (strokes := line_strokes(line)):
                continue
            read = strokes_to_input(strokes_simplify(strokes_bend(strokes, rng=rng, rotate=10.0)), line_width=float(rng.uniform(1.5, 2.8)))
            if read.image is not None:
                images.append(read.image)
                labels.append(label)
    return Digits.from_arrays(images, labels)
