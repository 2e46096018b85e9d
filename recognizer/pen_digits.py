"""Real pen digits shipped with the code: 2,498 UCI pen drawings (recognizer/pen_digits/README.md:
where they come from, CC BY 4.0), as strokes on the page's canvas.

Two readers, both rendering them with the serving code's own preprocessing: building a model's
serving form calibrates and checks its 8-bit graphs on them (recognizer.formbuild), and the
promotion gate reads them as its pen guard set (training.nn.guard). No user can write to them.
"""

from pathlib import Path

import numpy as np

PEN_DIGITS_PATH = Path(__file__).resolve().parent / "pen_digits" / "pendigits.npz"


def pen_digits_strokes(path: Path = PEN_DIGITS_PATH) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """Each drawing's strokes (canvas pixels) and the labels."""
    with np.load(path) as arrays:  # plain arrays: np.load refuses pickles by default
        points = arrays["points"].astype(np.float64) / 10
        strokes = np.split(points, np.cumsum(arrays["stroke_points"])[:-1])
        bounds = np.cumsum(arrays["drawing_strokes"])[:-1]
        drawings = [list(group) for group in np.split(np.array(strokes, dtype=object), bounds)]
        return drawings, arrays["labels"].astype(np.int64)
