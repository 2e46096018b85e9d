"""Rows for tests that are not about the model: what a sample holds is set here, not guessed."""

import factory
import numpy as np

from feedback.models import Sample
from recognizer.preprocessing import to_png


class SampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sample

    label = 0
    guess = factory.SelfAttribute("label")  # a confirmed right guess unless told otherwise
    confidence = 0.9
    model_version = "model-a"
    model_input = factory.LazyFunction(lambda: bytes(28 * 28))
    drawing = factory.LazyFunction(lambda: to_png(np.full((400, 400), 255, np.uint8)))
