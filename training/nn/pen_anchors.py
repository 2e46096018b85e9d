"""Digits as a pen draws them, for a fine-tune to follow its teacher on: the digits of a few Hershey
fonts drawn in a few strokes, bent by a hand and sent through the page's stroke path.

A fine-tune on MNIST alone moves the lines between digits where MNIST's pens put them, not where
the page's strokes do: a no-op retrain lost pen 1s to 7 on every seed (docs/results.md, "Where a
no-op fine-tune drifts"). Distilled from the active model on these drawings, the fine-tune keeps
the answers the active model gives to digits drawn with strokes. No pen digit of
../shared/pendigits is used: the benchmarks and the pen guard set judge on those.
"""

import numpy as np

from training.nn.data import Digits

PEN_FONTS = ("futural", "rowmans", "scripts", "scriptc", "timesr", "timesi")  # digits drawn in a few strokes, as a pen does


def pen_anchors(*, copies: int, seed: int = 0) -> Digits:
    """Each digit of PEN_FONTS, `copies` times bent by a hand (training.nn.negatives.strokes_bend)
    and drawn with a line 1.5-2.8 px wide through the page's stroke path (6 fonts x 10 digits x
    `copies` drawings; the labels are the digits, though a fine-tune follows its teacher there)."""
    from recognizer.preprocessing import strokes_simplify, strokes_to_input
    from training.nn.negatives import letter_strokes, strokes_bend

    rng, images, labels = np.random.default_rng(seed + 7), [], []
    for font in PEN_FONTS:
        for digit in range(10):
            glyph = letter_strokes(font=font, character=str(digit))
            for _ in range(copies):
                read = strokes_to_input(strokes_simplify(strokes_bend(glyph, rng=rng, rotate=15.0)), line_width=float(rng.uniform(1.5, 2.8)))
                if read.image is not None:
                    images.append(read.image)
                    labels.append(digit)
    return Digits.from_arrays(images, labels)
