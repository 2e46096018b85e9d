"""MNIST's handwriting drawn again with the page's pen (training.nn.pen_mnist): positives drawn as
the page draws, so that a net trained from scratch beside real not-digits does not learn the pen."""

import cv2
import numpy as np
import torch

from recognizer.modelfile import model_load
from training.nn.data import Digits, mnist_load
from training.nn.inference import predictions
from training.nn.pen_mnist import centre_lines, line_strokes, pen_mnist, thin


def test_thinning_leaves_a_line_one_pixel_wide_that_keeps_the_shape_connected():
    bar = np.zeros((1, 20, 40), bool)
    bar[0, 7:14, 5:35] = True  # a bar 7 px thick
    line = thin(bar)[0]
    assert line.any() and line[:, 10:30].sum(axis=0).max() == 1  # one pixel across, along its middle
    assert set(np.nonzero(line[:, 10:30])[0]) <= {9, 10, 11}
    ring = np.zeros((40, 40), np.uint8)
    cv2.circle(ring, (20, 20), 12, 1, 5)  # a ring 5 px thick
    thinned = thin(ring[None].astype(bool))[0]
    assert thinned.sum() < ring.sum() / 3
    regions, _ = cv2.connectedComponents((~thinned).astype(np.uint8), connectivity=4)
    assert regions - 1 == 2  # still a closed loop: the outside and the hole


def test_a_traced_line_drawn_with_a_pen_covers_the_line(mnist_dir):
    image = mnist_load(data_dir=mnist_dir, train=False).images[0].numpy()  # a 7
    line = centre_lines(image[None])[0]
    canvas = np.zeros(line.shape, np.uint8)
    for stroke in line_strokes(line):
        cv2.polylines(canvas, [stroke.astype(np.int32)], False, 1, 1)
    assert (canvas[line] == 1).all()  # every pixel of the line is drawn
    assert canvas.sum() <= line.sum() * 1.1  # and nothing much besides


def test_pen_mnist_draws_the_chosen_mnist_digits_under_their_labels_through_the_stroke_path(mnist_dir):
    mnist = mnist_load(data_dir=mnist_dir, train=False)
    drawn = pen_mnist(mnist=mnist, count=60)
    assert len(drawn) == 60 and drawn.images.dtype == torch.uint8 and drawn.images.shape[1:] == (28, 28)
    chosen = np.random.default_rng(11).permutation(len(mnist))[:60]
    assert torch.equal(drawn.labels, mnist.labels[chosen])
    assert not any(torch.equal(a, b) for a, b in zip(drawn.images, mnist.images[chosen]))  # drawn again, not copied
    assert torch.equal(pen_mnist(mnist=mnist, count=60).images, drawn.images)  # the same seed draws the same
    assert not torch.equal(pen_mnist(mnist=mnist, count=60, seed=1).labels, drawn.labels)  # another seed, other digits


def test_the_shipped_model_reads_mnist_drawn_with_the_pen_as_the_digits_they_are(mnist_dir, settings):
    drawn = pen_mnist(mnist=mnist_load(data_dir=mnist_dir, train=False), count=300)
    read = predictions(model_load(path=settings.SHIPPED_MODEL).net, drawn)
    assert (read == drawn.labels).float().mean() >= 0.95  # the same people's digits, the page's pen


def test_pen_mnist_of_no_digits_is_empty():
    assert len(pen_mnist(mnist=Digits.from_arrays([], []), count=10)) == 0
