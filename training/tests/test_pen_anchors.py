"""Pen-style digits a fine-tune follows its teacher on (training.nn.pen_anchors): MNIST alone moves
the line between a pen's 1s and 7s."""

import torch

from recognizer.modelfile import model_load
from training.nn.inference import predictions
from training.nn.pen_anchors import PEN_FONTS, pen_anchors


def test_pen_anchors_are_each_pen_fonts_digits_bent_and_drawn_through_the_pages_stroke_path():
    anchors = pen_anchors(copies=2)
    assert len(anchors) == len(PEN_FONTS) * 10 * 2
    assert torch.equal(torch.bincount(anchors.labels, minlength=10), torch.full((10,), len(PEN_FONTS) * 2))
    assert anchors.images.dtype == torch.uint8 and anchors.images.shape[1:] == (28, 28)
    assert all(int(image.max()) > 200 for image in anchors.images)  # ink, centred by the page's own path
    assert torch.equal(pen_anchors(copies=2).images, anchors.images)  # the same seed draws the same
    assert not torch.equal(pen_anchors(copies=2, seed=1).images, anchors.images)  # each run's seed bends its own


def test_the_shipped_model_reads_the_pen_anchors_as_the_digits_they_are(settings):
    anchors = pen_anchors(copies=3)
    read = predictions(model_load(path=settings.SHIPPED_MODEL).net, anchors)
    # Digits a person would read: what a fine-tune is asked to keep reading as it does now.
    assert (read == anchors.labels).float().mean() >= 0.9
