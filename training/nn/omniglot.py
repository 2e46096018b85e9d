"""Real handwritten characters that are not digits: Omniglot's "background, small 1" strokes
(Lake, Salakhutdinov & Tenenbaum, "Human-level concept learning through probabilistic program
induction", Science 2015; MIT licence, training/nn/omniglot/LICENSE.omniglot), drawn with a mouse
or pen in a web browser by 20 people per character: Latin a-z, Greek, Korean, Balinese, Early
Aramaic.

Read once from the published zip (../shared/omniglot/strokes_background_small1.zip, or
settings.OMNIGLOT_STROKES / DIGITSITE_OMNIGLOT_STROKES) by `python -m tools.omniglot_pack`, and kept
with the code as a compact file of the same strokes (training/nn/omniglot/omniglot.npz, which
`omniglot_drawings` reads), as the pen guard set is (recognizer.pen_digits): a default retrain and the gate must
not depend on a folder beside the checkout.

Split by writer, never by drawing: a model that has seen a person's "a" says nothing about a
stranger's. Drawers HELD_OUT_DRAWERS of every alphabet, and the whole of HELD_OUT_ALPHABET, are
never trained on; they measure refusal (bench.refusal) and are the gate's real refusal guard.
Omniglot names a drawing <character id>_<drawer>.txt. Within an alphabet a drawer number is one
person: how long a drawer takes, relative to the character's average, agrees across the
alphabet's characters 13 to 27 times more than shuffled numbers do. Across alphabets the numbers
partly agree too (Greek with Balinese r = 0.71, with Latin 0.51), as if some people drew several
alphabets: so the same drawer numbers are held out in every alphabet, and the held-out alphabet
is also reported on those drawers alone (bench.refusal).

Each drawing is laid out on the page's 400x400 canvas at a seeded size and place, as the pen
digits are (testing.pendigits_data), rounded to a tenth of a pixel as the page records a pointer,
and drawn into the 28x28 input by the serving code itself (recognizer.preprocessing.strokes_to_input).
"""

import functools
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognizer.labels import NOT_A_DIGIT
from recognizer.preprocessing import strokes_simplify, strokes_to_input
from training.nn.data import Digits

PACKED = Path(__file__).resolve().parent / "omniglot" / "omniglot.npz"
ALPHABETS = ("Latin", "Greek", "Korean", "Balinese", "Early_Aramaic")
HELD_OUT_ALPHABET = "Greek"  # chosen before measuring: besides Latin, the script a user of this site most likely draws
HELD_OUT_DRAWERS = frozenset({16, 17, 18, 19, 20})  # of each alphabet's 20
CANVAS = 400  # the page's canvas (testing.pendigits_data.CANVAS)
MARGIN = 24  # the page's brush: a drawing keeps this far from the canvas's edge
SIZES = (0.25, 0.80)  # the drawing's longer side as a share of the canvas, as the letters were sent

# Characters a person would read as a digit: no negative at all (as training.nn.negatives.LOOKS_LIKE_A_DIGIT
# for fonts). Latin by letter; the others by looking at each character's drawings (rendered as the
# model reads them) and at what the model before real negatives answered them "sure".
LOOKS_LIKE_A_DIGIT: dict[tuple[str, int], str] = {
    ("Latin", 2): "b: 6", ("Latin", 7): "g: 9", ("Latin", 9): "i: a 1 with a dot", ("Latin", 12): "l: 1",
    ("Latin", 15): "o: 0", ("Latin", 17): "q: 9", ("Latin", 19): "s: 5", ("Latin", 26): "z: 2",
    ("Greek", 8): "theta: a barred 0, as some write zero", ("Greek", 9): "iota: 1", ("Greek", 15): "omicron: 0",
    ("Korean", 19): "eu, a single bar: a 1 laid down", ("Korean", 21): "i, a single upright: 1", ("Korean", 22): "giyeok: 7",
    ("Korean", 23): "ssanggiyeok: 77", ("Korean", 33): "ieung, a circle: 0", ("Korean", 37): "kieuk: a crossed 7",
    ("Balinese", 5): "a hooked 7 or 2",
    ("Early_Aramaic", 1): "a crossed 4", ("Early_Aramaic", 2): "9", ("Early_Aramaic", 3): "7", ("Early_Aramaic", 4): "4",
    ("Early_Aramaic", 6): "4", ("Early_Aramaic", 7): "a 1 with serifs", ("Early_Aramaic", 9): "a crossed circle: 0",
    ("Early_Aramaic", 10): "a crossed z: 2", ("Early_Aramaic", 12): "an open 6", ("Early_Aramaic", 16): "0",
    ("Early_Aramaic", 17): "7", ("Early_Aramaic", 20): "4",
}  # fmt: skip


@dataclass(frozen=True)
class Drawing:
    alphabet: str
    character: int  # 1-based, as Omniglot's folder characterNN
    drawer: int  # 1-20: the person's place among the alphabet's drawers
    strokes: tuple[np.ndarray, ...]  # (n, 2) float, Omniglot's pixels, y down as on the canvas

    @property
    def held_out(self) -> bool:
        return self.alphabet == HELD_OUT_ALPHABET or self.drawer in HELD_OUT_DRAWERS

    @property
    def kind(self) -> str:
        return f"{self.alphabet}/{self.character:02d}"


@functools.cache
def omniglot_drawings(path: Path = PACKED) -> tuple[Drawing, ...]:
    """The drawings kept with the code (omniglot_pack), look-alikes included."""
    with np.load(path) as a:  # plain arrays: np.load refuses pickles by default
        strokes = np.split(a["points"].astype(np.float64) / 10, np.cumsum(a["stroke_points"])[:-1])
        bounds = np.cumsum(a["drawing_strokes"])[:-1]
        groups = np.split(np.arange(len(strokes)), bounds)
        return tuple(
            Drawing(ALPHABETS[a["alphabet"][i]], int(a["character"][i]), int(a["drawer"][i]), tuple(strokes[j] for j in group))
            for i, group in enumerate(groups)
        )


def negatives_of(drawings) -> list[Drawing]:
    """The drawings that may count as "not a digit": no look-alike of one."""
    return [d for d in drawings if (d.alphabet, d.character) not in LOOKS_LIKE_A_DIGIT]


def layout(drawing: Drawing, *, seed: int, copy: int = 0) -> list[np.ndarray]:
    """The drawing on the page's canvas at a seeded size (SIZES) and place, to a tenth of a pixel."""
    rng = random.Random(f"{seed}:{drawing.kind}:{drawing.drawer}:{copy}")
    points = np.concatenate(drawing.strokes)
    low = points.min(axis=0)
    extent = np.maximum(points.max(axis=0) - low, 1.0)
    scale = rng.uniform(*SIZES) * CANVAS / extent.max()
    size = extent * scale
    origin = np.array([rng.uniform(MARGIN, max(MARGIN, CANVAS - MARGIN - size[0])), rng.uniform(MARGIN, max(MARGIN, CANVAS - MARGIN - size[1]))])
    return [np.round((s - low) * scale + origin, 1) for s in drawing.strokes]


def omniglot_digits(drawings, *, seed: int, copies: int = 1) -> tuple[Digits, list[Drawing]]:
    """Each drawing laid out `copies` times and drawn as the page's strokes are, labelled NOT_A_DIGIT;
    and the drawing each image came from."""
    images, sources = [], []
    for drawing in drawings:
        for copy in range(copies):
            # Simplified as the API simplifies strokes on arrival (recognizer.fields).
            read = strokes_to_input(strokes_simplify(layout(drawing, seed=seed, copy=copy)))
            if read.image is not None:
                images.append(read.image)
                sources.append(drawing)
    return Digits.from_arrays(images, [NOT_A_DIGIT] * len(images)), sources


TRAIN_SEED = 0
HELD_OUT_SEED = 1_000_003


@functools.cache
def omniglot_train(*, copies: int = 3) -> Digits:
    """What a run learns from: the training writers' characters of the training alphabets, no look-alikes."""
    return omniglot_digits([d for d in negatives_of(omniglot_drawings()) if not d.held_out], seed=TRAIN_SEED, copies=copies)[0]


@functools.cache
def omniglot_held_out() -> tuple[Digits, tuple[Drawing, ...]]:
    """What measures refusal, never trained on: held-out writers and the held-out alphabet, no look-alikes."""
    digits, sources = omniglot_digits([d for d in negatives_of(omniglot_drawings()) if d.held_out], seed=HELD_OUT_SEED)
    return digits, tuple(sources)
