"""The pen guard set: real pen drawings shipped with the code, read by the promotion gate.

training/guard/README.md says where they come from (UCI pen digits, CC BY 4.0). They are
rendered by the serving code's own preprocessing, so the gate reads them as the site reads a
drawing; the rendering is cached for the life of the process (about 2 s the first time).
"""

from functools import lru_cache
from pathlib import Path

import numpy as np

from recognizer.preprocessing import strokes_to_input
from training.data import Digits

PEN_GUARD_PATH = Path(__file__).resolve().parent / "guard" / "pendigits.npz"


def pen_guard_strokes(path: Path = PEN_GUARD_PATH) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """Each drawing's strokes (canvas pixels) and the labels."""
    with np.load(path) as arrays:  # plain arrays: np.load refuses pickles by default
        points = arrays["points"].astype(np.float64) / 10
        strokes = np.split(points, np.cumsum(arrays["stroke_points"])[:-1])
        bounds = np.cumsum(arrays["drawing_strokes"])[:-1]
        drawings = [list(group) for group in np.split(np.array(strokes, dtype=object), bounds)]
        return drawings, arrays["labels"].astype(np.int64)


@lru_cache(maxsize=1)
def pen_guard() -> Digits:
    """The guard set as the model's 28x28 inputs."""
    drawings, labels = pen_guard_strokes()
    return Digits.from_arrays([strokes_to_input(strokes).image for strokes in drawings], labels.tolist())
