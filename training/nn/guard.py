"""The pen guard set: the real pen digits shipped with the code (recognizer.pen_digits), read by
the promotion gate. They are rendered by the serving code's own preprocessing, so the gate reads
them as the site reads a drawing; the rendering is cached for the life of the process (about 2 s
the first time).
"""

from functools import lru_cache

from recognizer.pen_digits import pen_digits_strokes
from recognizer.preprocessing import strokes_to_input
from training.nn.data import Digits


@lru_cache(maxsize=1)
def pen_guard() -> Digits:
    """The guard set as the model's 28x28 inputs."""
    drawings, labels = pen_digits_strokes()
    return Digits.from_arrays([strokes_to_input(strokes).image for strokes in drawings], labels.tolist())
