"""Real pen-stroke digits (UCI "pendigits", 30 writers) laid out on the page's canvas.

The file keeps each digit as the pen's trajectory in tablet units with y growing upwards.
`load_digits` reads it; `layout` places each digit on the 400x400 canvas at a seeded random
size and place, as a person might draw it: a size band (8-15, 15-25, 25-35, 35-55 or 55-80% of
the canvas height) chosen evenly, then a size within it, so small digits are measured as often
as big ones; `render` draws the strokes with OpenCV the way the page's canvas does, for quick
offline measurements without a browser.
"""

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognizer.preprocessing import PAGE_BRUSH, draw_strokes

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "pendigits" / "pendigits-orig.tra"
CANVAS = 400  # the page's canvas, in its own pixels
BRUSH = PAGE_BRUSH  # the page's pen width
# Digit height as a share of the canvas. A person may draw a digit tiny in a corner or fill
# the pad; each band gets the same share of digits.
SIZE_BANDS = ((0.08, 0.15), (0.15, 0.25), (0.25, 0.35), (0.35, 0.55), (0.55, 0.80))
BAND_NAMES = [f"{low * 100:.0f}-{high * 100:.0f}%" for low, high in SIZE_BANDS]  # "8-15%", ...
GUARD_WRITERS = 3  # writers whose number is a multiple of this are the gate's pen guard set (bench.guard_set)
_SEGMENT = re.compile(r'^\.SEGMENT DIGIT\s+(\d+)(?:-(\d+))?\s+\?\s+"(\d)"')


@dataclass(frozen=True)
class PenDigit:
    index: int  # position in the file
    label: int
    writer: int
    strokes: tuple[np.ndarray, ...]  # each (n, 2) float, tablet units, y grows downwards


def load_digits(path: Path = DEFAULT_PATH) -> list[PenDigit]:
    """Parse the UNIPEN-like file. `.COMMENT <label> <writer> <n>` follows each segment."""
    strokes: list[np.ndarray] = []
    segments: list[tuple[int, int, int]] = []  # first stroke, last stroke, label
    writers: list[int] = []
    current: list[tuple[float, float]] | None = None
    for line in path.read_text().splitlines():
        if line.startswith(".PEN_DOWN"):
            current = []
        elif line.startswith(".PEN_UP"):
            strokes.append(np.array(current, dtype=np.float64).reshape(-1, 2))
            current = None
        elif line.startswith(".SEGMENT"):
            match = _SEGMENT.match(line)
            first = int(match[1])
            segments.append((first, int(match[2] or first), int(match[3])))
        elif line.startswith(".COMMENT") and len(segments) > len(writers):
            writers.append(int(line.split()[2]))
        elif current is not None and line.strip():
            x, y = line.split()
            current.append((float(x), -float(y)))  # the tablet's y grows upwards; a canvas's down
    return [
        PenDigit(i, label, writers[i], tuple(strokes[first : last + 1]))
        for i, (first, last, label) in enumerate(segments)
    ]


def layout(digit: PenDigit, seed: int) -> list[np.ndarray]:
    """Scale the digit to a random height and move it to a random place on the canvas. Each
    digit draws from its own seeded generator, so its place is the same in every subset."""
    rng = random.Random(f"{seed}:{digit.index}")
    points = np.concatenate(digit.strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    extent = np.maximum(high - low, 1.0)
    height = rng.uniform(*rng.choice(SIZE_BANDS)) * CANVAS
    scale = min(height / extent[1], (CANVAS - 2 * BRUSH) / extent[0])  # very wide digits still fit
    size = extent * scale
    margin = BRUSH
    origin = np.array(
        [rng.uniform(margin, CANVAS - margin - size[0]), rng.uniform(margin, CANVAS - margin - size[1])]
    )
    # To a tenth of a pixel, as the page records a pointer (draw.js): the offline benchmarks then
    # send exactly what the browser's do.
    return [np.round(((stroke - low) * scale + origin) * 10) / 10 for stroke in digit.strokes]


def size_band(digit: PenDigit, seed: int) -> str:
    """The size band `layout` drew the digit in, as "8-15%"."""
    return random.Random(f"{seed}:{digit.index}").choice(BAND_NAMES)


def render(strokes: list[np.ndarray], brush: int = BRUSH) -> np.ndarray:
    """Black round-capped strokes on white, anti-aliased, like the page's 2D canvas."""
    return 255 - draw_strokes(strokes, width=brush, canvas=np.zeros((CANVAS, CANVAS), np.uint8))


def stratified_subset(digits: list[PenDigit], per_writer_digit: int, seed: int) -> list[PenDigit]:
    """`per_writer_digit` digits of each label from each writer: every style stays represented."""
    rng = random.Random(seed)
    groups: dict[tuple[int, int], list[PenDigit]] = {}
    for digit in digits:
        groups.setdefault((digit.writer, digit.label), []).append(digit)
    chosen = [d for key in sorted(groups) for d in rng.sample(groups[key], min(per_writer_digit, len(groups[key])))]
    return sorted(chosen, key=lambda d: d.index)


def outside_guard(digits: list[PenDigit]) -> list[PenDigit]:
    """The drawings of the writers the gate's pen guard set does not hold (1, 2, 4, 5, ..., 29):
    the only ones a benchmark may teach with, or the run would train on what judges it."""
    return [d for d in digits if d.writer % GUARD_WRITERS != 0]
