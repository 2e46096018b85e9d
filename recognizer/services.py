"""Guessing a digit: the one function the predict API, the feedback API and the benchmarks call."""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from recognizer import memory, preprocessing
from recognizer.labels import NOT_A_DIGIT, NOT_A_DIGIT_LABEL
from recognizer.preprocessing import ModelInput, Strokes
from recognizer.serving import active_model

# Below this calibrated probability the answer is "not sure" and names the top two. Chosen by
# cross-validation over the pen digits' writers for the shipped model (bench/calibration.py:
# 0.96 for 20261207-003000-realtune, 4.5% of pen digits not sure; docs/results.md).
SURE_THRESHOLD = 0.96

REASONS = {
    "no_ink": "Draw a digit.",
    "too_small": "Too small to read: draw bigger.",
    NOT_A_DIGIT_LABEL: "That doesn't look like a digit.",
    memory.REASON: "Like the one you corrected.",
    memory.REASON_STOOD: "Like one you drew before.",
}
# How much an answer from the memory of the sender's own corrections weighs against the net's
# probabilities: the person's word, for a drawing this close to one they corrected, all but settles it.
MEMORY_WEIGHT = 0.99


@dataclass(frozen=True)
class Prediction:
    digit: int | None  # None: nothing to read, or not a digit (see reason)
    confidence: float | None  # calibrated probability of `digit`, or of "not a digit" when that is the answer
    probabilities: list[float] | None  # calibrated, the ten digits in order; with not_a_digit they sum to 1
    sure: bool | None  # confidence at least SURE_THRESHOLD
    top_two: list[int] | None  # the two likeliest digits, likeliest first (also when it is not a digit)
    reason: str | None  # why there is no digit ("no_ink", "too_small", "not_a_digit"), or why it is not the net's ("your_correction")
    model: str  # the version that guessed
    model_input: np.ndarray | None  # the 28x28 uint8 image the network read (ink bright)
    not_a_digit: float | None = None  # calibrated probability that the drawing is not a digit at all
    correction: int | None = None  # reason "your_correction": the id of the sender's own correction it resembles
    # The serving graph's pooled features of model_input (None: a form without them), and which
    # graph made them: what recognizer.memory remembers of a correction. Never sent to clients.
    features: np.ndarray | None = field(default=None, repr=False, compare=False)
    features_of: str = ""

    @property
    def hint(self) -> str | None:
        return REASONS.get(self.reason) if self.reason else None


def digit_predict(*, image: bytes | None = None, strokes: Strokes | None = None, source: str | None = None) -> Prediction:
    """A drawing, as image bytes (PNG or JPEG) or as strokes, -> the active model's guess; for a
    drawing close to one its sender (`source`, digitsite.clients.client_source) corrected
    lately, the label they gave (recognizer.memory; reason "your_correction"). Without a
    source, or from one with no such correction, exactly the net's answer.
    Raises PreprocessingError on bad images."""
    if (image is None) == (strokes is None):
        raise ValueError("digit_predict takes an image or strokes, exactly one")
    read: ModelInput = preprocessing.strokes_to_input(strokes) if strokes is not None else preprocessing.image_to_input(image)
    model = active_model()
    if read.image is None:
        return Prediction(None, None, None, None, None, read.reason, model.version, None)
    net = model.serving_net()
    logits, features = net.read(preprocessing.normalize(read.image))
    # Temperature scaling, fitted on held-out MNIST when the model was made: the network's raw
    # softmax is overconfident, and "not sure" needs probabilities that mean what they say.
    probabilities = softmax(logits[0].astype(np.float64) / model.temperature)
    made_by = memory.features_of(version=model.version, variant=net.variant)
    answer = prediction_from_probabilities(probabilities=probabilities, model=model.version, model_input=read.image)
    answer = replace(answer, features=None if features is None else features[0], features_of=made_by)
    recalled = memory.memory_recall(
        source=source,
        features=answer.features,
        probabilities=probabilities,
        made_by=made_by,
        remake=features_maker(net),
    )
    if recalled is None or recalled.label == answer.digit:
        return answer
    # The sender's own label, blended with the net's probabilities (MEMORY_WEIGHT): it is the answer.
    blended = (1 - MEMORY_WEIGHT) * probabilities
    blended[recalled.label] += MEMORY_WEIGHT
    remembered = prediction_from_probabilities(probabilities=blended, model=model.version, model_input=read.image)
    return replace(remembered, reason=recalled.reason, correction=recalled.sample_id, features=answer.features, features_of=made_by)


def digit_stood_remember(*, source: str | None, inputs: list[np.ndarray], digits: list[int]) -> None:
    """Remember drawings `source` let stand: the 28x28 `inputs` the page was answered with (its
    input_image) and the `digits` it showed and left. Only while the memory is on and for a
    source with a correction remembered (recognizer.memory.memory_remember_stood); their
    features are made once, by the graph this process serves, for every process to read."""
    if not memory.memory_on() or not source or not inputs:
        return
    model = active_model()
    net = model.serving_net()
    if not net.has_features:
        return
    memory.memory_remember_stood(
        source=source,
        inputs=np.stack([np.asarray(image, dtype=np.uint8) for image in inputs]),
        labels=digits,
        made_by=memory.features_of(version=model.version, variant=net.variant),
        make=features_maker(net),
    )


def features_maker(net) -> Callable[[np.ndarray], np.ndarray]:
    """(N, 28, 28) uint8 inputs -> their pooled features by `net`'s graph (recognizer.memory)."""
    return lambda inputs: net.read(preprocessing.normalize(inputs))[1]


def prediction_from_probabilities(*, probabilities: np.ndarray, model: str, model_input: np.ndarray) -> Prediction:
    """Calibrated class probabilities (ten digits, then "not a digit" for a model that has it) ->
    the answer: the likeliest class, and the two likeliest digits whatever it is, so that a
    page told "not a digit" can still offer them."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    digits = probabilities[:NOT_A_DIGIT]
    refused = float(probabilities[NOT_A_DIGIT]) if len(probabilities) > NOT_A_DIGIT else 0.0
    first, second = (int(d) for d in np.argsort(-digits, kind="stable")[:2])
    is_digit = float(digits[first]) >= refused
    confidence = float(digits[first]) if is_digit else refused
    return Prediction(
        digit=first if is_digit else None,
        confidence=confidence,
        probabilities=[float(p) for p in digits],
        sure=confidence >= SURE_THRESHOLD,
        top_two=[first, second],
        reason=None if is_digit else NOT_A_DIGIT_LABEL,
        model=model,
        model_input=model_input,
        not_a_digit=refused,
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from one drawing's logits (float64, shifted by the largest so exp cannot overflow)."""
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()
