"""Guessing a digit: the one function the predict API, the feedback API and the benchmarks call."""

from dataclasses import dataclass

import numpy as np
import torch

from recognizer import preprocessing
from recognizer.registry import active_model


@dataclass(frozen=True)
class Prediction:
    digit: int | None  # None: the drawing has no ink
    confidence: float | None
    probabilities: list[float] | None  # in digit order, summing to 1
    model: str  # the version that guessed
    model_input: np.ndarray | None  # the 28x28 uint8 image the network read (ink bright)


@torch.inference_mode()
def digit_predict(*, image: bytes) -> Prediction:
    """PNG or JPEG bytes -> the active model's guess. Raises PreprocessingError on bad images."""
    model_input = preprocessing.to_model_input(image)
    model = active_model()
    if model_input is None:
        return Prediction(None, None, None, model.version, None)
    logits = model.net(preprocessing.normalize(torch.from_numpy(model_input)))
    probabilities = torch.softmax(logits.double(), dim=1)[0]
    digit = int(probabilities.argmax())
    return Prediction(
        digit=digit,
        confidence=float(probabilities[digit]),
        probabilities=[float(p) for p in probabilities],
        model=model.version,
        model_input=model_input,
    )
