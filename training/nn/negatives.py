"""Drawings that are not digits, made here: letters from Hershey vector fonts, scribbles and
shapes, as strokes, drawn into the 28x28 input by the serving code itself
(`recognizer.preprocessing.strokes_to_input`), labelled NOT_A_DIGIT.

Strokes, not bitmaps: the page sends the pen's path, so a negative goes through exactly what a
person's letter A goes through. Each is bent the way a hand bends a drawing (tilt, slant,
stretch, a wobbling pen) before it is drawn; training's own batch augmentation adds the rest.

Held out to measure, never trained on: whole fonts for letters (HELD_OUT_FONTS), and a seed of
their own for scribbles and shapes (`negatives_held_out`). A glyph that a person would read as a
digit is no negative at all: LOOKS_LIKE_A_DIGIT lists those left out, and why.
"""

import functools
import math
import string
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from HersheyFonts import HersheyFonts

from recognizer.labels import NOT_A_DIGIT
from recognizer.preprocessing import strokes_to_input
from training.nn.data import Digits

# Roman, script and gothic faces; single-stroke ones (futural, rowmans, scripts, cursive) are
# nearest to a pen, the others' outlines draw like a broad nib.
TRAIN_FONTS = (
    "futural", "rowmans", "rowmand", "scripts", "scriptc", "timesr", "timesi", "timesrb",
    "gothiceng", "gothicger", "gothgbt", "gothgrt", "gothitt",
)  # fmt: skip
HELD_OUT_FONTS = ("cursive", "futuram", "rowmant", "timesib", "gothicita")

LOOKS_LIKE_A_DIGIT = {
    "O": "0", "o": "0", "D": "a 0 with a flat side", "Q": "a 0 with a tick",
    "I": "1", "l": "1", "i": "a 1 with a dot", "|": "1", "/": "1", "\\": "1", "!": "a 1 with a dot",
    "Z": "2", "z": "2", "?": "a 2 or 7 with a dot",
    "S": "5", "s": "5", "$": "5",
    "b": "6", "G": "6",
    "B": "8", "&": "8",
    "g": "9", "q": "9",
    "^": "\u0668, the Eastern Arabic 8, which users may teach as an 8 (training/tests/test_trainer.py)",
}  # fmt: skip
# Marks too small or too plain to be anything once scaled to the box: a dot, a bar, a bracket.
TOO_PLAIN = set(".,:;'`\"-_()[]{}")
CHARACTERS = tuple(c for c in string.ascii_letters + "#%@*+=~^<>" if c not in LOOKS_LIKE_A_DIGIT and c not in TOO_PLAIN)

TRAIN_SEED = 0
HELD_OUT_SEED = 1_000_003  # scribbles and shapes held out: a seed no training run uses


@dataclass(frozen=True)
class Negatives:
    """Drawings labelled NOT_A_DIGIT, and where each came from: "letter:<font>", "scribble:<kind>", "shape:<kind>"."""

    digits: Digits
    kinds: list[str]

    def __len__(self) -> int:
        return len(self.kinds)


# -- letters ------------------------------------------------------------------------------


@functools.cache
def _font(name: str) -> HersheyFonts:
    font = HersheyFonts()
    font.load_default_font(name)
    return font


def letter_strokes(*, font: str, character: str) -> list[np.ndarray]:
    """One glyph's strokes in font units, y down as on the canvas; [] when the font lacks it."""
    return [np.asarray(s, dtype=float) for s in _font(font).strokes_for_text(character) if len(s)]


# -- scribbles and shapes: unit-sized strokes, y down -------------------------------------


def _zigzag(rng: np.random.Generator) -> list[np.ndarray]:
    n = int(rng.integers(5, 13))
    x = np.linspace(0, 1, n) + rng.normal(0, 0.02, n)
    # Tall teeth: a flat zigzag, turned upright, is a wobbly 1.
    y = np.where(np.arange(n) % 2 == 0, 0.0, 1.0) * rng.uniform(0.5, 1.0) + rng.normal(0, 0.08, n)
    return [np.stack([x, y], axis=1)]


def _catmull_rom(points: np.ndarray, per_segment: int = 12) -> np.ndarray:
    padded = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for p0, p1, p2, p3 in zip(padded[:-3], padded[1:-2], padded[2:-1], padded[3:]):
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    return np.concatenate(out + [points[-1:]])


def _scribble(rng: np.random.Generator) -> list[np.ndarray]:
    # Fewer points make a curve that may well be a 2, a 3 or a 7: a scribble wanders more.
    return [_catmull_rom(rng.uniform(0, 1, (int(rng.integers(8, 16)), 2))) for _ in range(int(rng.integers(1, 3)))]


def _coil(rng: np.random.Generator) -> list[np.ndarray]:
    # Loops along a line, as a pen tests itself: "eeee".
    # Loops wide apart, as a pen draws them: packed close they would fill a bar, a thick 1.
    turns = rng.uniform(3, 5)
    t = np.linspace(0, turns * 2 * np.pi, int(60 * turns))
    return [np.stack([t / (2 * np.pi) * rng.uniform(0.6, 1.0) + np.cos(t), np.sin(t)], axis=1)]


def _circle(n: int = 48, *, centre=(0.0, 0.0), r: float = 1.0, start: float = 0.0, end: float = 2 * np.pi) -> np.ndarray:
    t = np.linspace(start, end, n)
    return np.stack([centre[0] + r * np.cos(t), centre[1] + r * np.sin(t)], axis=1)


def _polygon(corners: list[tuple[float, float]], closed: bool = True) -> np.ndarray:
    return np.asarray(corners + corners[:1] if closed else corners, dtype=float)


def _star(rng: np.random.Generator) -> list[np.ndarray]:
    angles = -np.pi / 2 + np.arange(5) * 4 * np.pi / 5  # a pentagram in one stroke
    if rng.random() < 0.5:
        return [_polygon([(math.cos(a), math.sin(a)) for a in angles])]
    outline = [(r * math.cos(a), r * math.sin(a)) for k in range(10) for a, r in [(-np.pi / 2 + k * np.pi / 5, 1.0 if k % 2 == 0 else 0.45)]]
    return [_polygon(outline)]


def _hash(rng: np.random.Generator) -> list[np.ndarray]:
    a, b = rng.uniform(0.25, 0.4), rng.uniform(0.6, 0.75)
    return [np.array([[a, 0], [a, 1]]), np.array([[b, 0], [b, 1]]), np.array([[0, a], [1, a]]), np.array([[0, b], [1, b]])]


def _cross(rng: np.random.Generator) -> list[np.ndarray]:
    if rng.random() < 0.5:
        return [np.array([[0, 0], [1, 1]]), np.array([[1, 0], [0, 1]])]
    return [np.array([[0.5, 0], [0.5, 1]]), np.array([[0, 0.5], [1, 0.5]])]


def _asterisk(rng: np.random.Generator) -> list[np.ndarray]:
    n = int(rng.integers(3, 5))
    return [np.array([[math.cos(a), math.sin(a)], [-math.cos(a), -math.sin(a)]]) for a in np.arange(n) * np.pi / n + rng.uniform(0, np.pi)]


def _spiral(rng: np.random.Generator) -> list[np.ndarray]:
    turns = rng.uniform(2, 4)
    t = np.linspace(0, turns * 2 * np.pi, int(50 * turns))
    return [np.stack([t * np.cos(t), t * np.sin(t)], axis=1) * (1 if rng.random() < 0.5 else -1)]


def _triangle(rng: np.random.Generator) -> list[np.ndarray]:
    return [_polygon([(0, 1), (rng.uniform(0.3, 0.7), 0), (1, 1)])]


def _square(rng: np.random.Generator) -> list[np.ndarray]:
    h = rng.uniform(0.5, 1.0)
    return [_polygon([(0, 0), (1, 0), (1, h), (0, h)])]


def _house(rng: np.random.Generator) -> list[np.ndarray]:
    return [_polygon([(0, 0.4), (1, 0.4), (1, 1), (0, 1)]), np.array([[0, 0.4], [0.5, 0], [1, 0.4]])]


def _envelope(rng: np.random.Generator) -> list[np.ndarray]:
    return [_polygon([(0, 0), (1, 0), (1, 0.7), (0, 0.7)]), np.array([[0, 0], [0.5, 0.4], [1, 0]])]


def _heart(rng: np.random.Generator) -> list[np.ndarray]:
    t = np.linspace(0, 2 * np.pi, 80)
    return [np.stack([16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))], axis=1)]


def _arrow(rng: np.random.Generator) -> list[np.ndarray]:
    # A wide head on a short shaft: a narrow one, pointing up, is a 1 with its flag.
    return [np.array([[0, 0.5], [1, 0.5]]), np.array([[0.55, 0.0], [1, 0.5], [0.55, 1.0]])]


def _smiley(rng: np.random.Generator) -> list[np.ndarray]:
    # A face, not a 0: the eyes and mouth are what make it no digit.
    return [
        _circle(),
        _circle(8, centre=(-0.35, -0.3), r=0.08),
        _circle(8, centre=(0.35, -0.3), r=0.08),
        _circle(16, centre=(0, 0.05), r=0.5, start=0.3, end=np.pi - 0.3),
    ]


def _wave(rng: np.random.Generator) -> list[np.ndarray]:
    periods = rng.uniform(2, 4)
    x = np.linspace(0, 1, 80)
    # Deep waves: a shallow one, turned upright, is a wobbly 1.
    return [np.stack([x, rng.uniform(0.25, 0.4) * np.sin(x * periods * 2 * np.pi)], axis=1)]


def _crossed_box(rng: np.random.Generator) -> list[np.ndarray]:
    return [_polygon([(0, 0), (1, 0), (1, 1), (0, 1)]), np.array([[0, 0], [1, 1]]), np.array([[1, 0], [0, 1]])]


SCRIBBLES: dict[str, Callable[[np.random.Generator], list[np.ndarray]]] = {"zigzag": _zigzag, "scribble": _scribble, "coil": _coil}
# Left out: a circle or ellipse (0), a slashed or doubled circle (0), a figure eight or infinity
# (8), a single line (1), a check mark or an angle (7, 1 or 4 at some tilts); and the shapes
# kept are drawn so that no tilt makes them a digit (see _zigzag, _wave, _arrow, _coil).
SHAPES: dict[str, Callable[[np.random.Generator], list[np.ndarray]]] = {
    "star": _star, "hash": _hash, "cross": _cross, "asterisk": _asterisk, "spiral": _spiral, "triangle": _triangle,
    "square": _square, "house": _house, "envelope": _envelope, "heart": _heart, "arrow": _arrow, "smiley": _smiley,
    "wave": _wave, "crossed box": _crossed_box,
}  # fmt: skip


# -- the hand -----------------------------------------------------------------------------


def strokes_bend(strokes: list[np.ndarray], *, rng: np.random.Generator, rotate: float = 15.0) -> list[np.ndarray]:
    """`strokes` as a hand might draw them: tilted up to `rotate` degrees, slanted, stretched,
    at a random size and place on the canvas, and with a pen that wobbles along the path."""
    points = np.concatenate(strokes)
    low, size = points.min(axis=0), max(float(np.ptp(points, axis=0).max()), 1e-6)
    angle = math.radians(rng.uniform(-rotate, rotate))
    slant, stretch = rng.uniform(-0.3, 0.3), rng.uniform(-0.15, 0.15)
    c, s = math.cos(angle), math.sin(angle)
    shape = np.array([[c, -s], [s, c]]) @ np.array([[1, slant], [0, 1]]) @ np.diag([1 + stretch, 1 - stretch])
    scale, place = rng.uniform(60, 300), rng.uniform(0, 200, 2)
    bent = []
    for stroke in strokes:
        dense = _densify((stroke - low) / size, step=0.02)
        # A wobble that drifts smoothly, as a hand's does, not pixel noise.
        wobble = np.cumsum(rng.normal(0, 0.004, dense.shape), axis=0)
        wobble -= np.linspace(0, 1, len(dense))[:, None] * wobble[-1]
        bent.append(((dense + wobble) @ shape.T) * scale + place)
    return bent


def _densify(stroke: np.ndarray, *, step: float) -> np.ndarray:
    if len(stroke) < 2:
        return stroke
    out = [stroke[:1]]
    for a, b in zip(stroke[:-1], stroke[1:]):
        n = max(1, int(np.linalg.norm(b - a) / step))
        out.append(a + (b - a) * np.linspace(0, 1, n + 1)[1:, None])
    return np.concatenate(out)


# -- sets ---------------------------------------------------------------------------------


def negatives_make(*, fonts: tuple[str, ...], letter_copies: int, scribbles: int, shapes: int, seed: int) -> Negatives:
    """Every CHARACTER of each font `letter_copies` times, `scribbles` scribbles and `shapes`
    shapes (kinds in turn), each bent by a hand seeded with `seed`, drawn by strokes_to_input."""
    rng = np.random.default_rng(seed)
    drawings: list[tuple[str, list[np.ndarray], float]] = []
    for font in fonts:
        for character in CHARACTERS:
            if strokes := letter_strokes(font=font, character=character):
                drawings += [(f"letter:{font}", strokes, 15.0)] * letter_copies
    # Scribbles and shapes have no upright: any turn of them is as likely.
    for i in range(scribbles):
        kind = list(SCRIBBLES)[i % len(SCRIBBLES)]
        drawings.append((f"scribble:{kind}", SCRIBBLES[kind](rng), 180.0))
    for i in range(shapes):
        kind = list(SHAPES)[i % len(SHAPES)]
        drawings.append((f"shape:{kind}", SHAPES[kind](rng), 180.0))
    images, kinds = [], []
    for kind, strokes, rotate in drawings:
        read = strokes_to_input(strokes_bend(strokes, rng=rng, rotate=rotate))
        if read.image is not None:
            images.append(read.image)
            kinds.append(kind)
    return Negatives(Digits.from_arrays(images, [NOT_A_DIGIT] * len(images)), kinds)


@functools.cache
def negatives_train(*, seed: int = TRAIN_SEED) -> Negatives:
    """What a run learns "not a digit" from: the training fonts' glyphs, scribbles and shapes."""
    return negatives_make(fonts=TRAIN_FONTS, letter_copies=6, scribbles=3000, shapes=3000, seed=seed)


@functools.cache
def negatives_held_out() -> Negatives:
    """What measures it, never trained on: the held-out fonts, and scribbles and shapes of their own seed."""
    return negatives_make(fonts=HELD_OUT_FONTS, letter_copies=3, scribbles=600, shapes=700, seed=HELD_OUT_SEED)
