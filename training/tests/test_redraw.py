"""The users' drawings drawn again from their strokes."""

import numpy as np
import pytest

from feedback.tests.factories import SampleFactory
from recognizer.preprocessing import strokes_to_input
from training.redraw import redrawn_inputs, samples_redraw, strokes_redraw

# A 4 in two strokes, in page pixels: the open angle, then the stem.
FOUR = [
    np.array([[120.0, 40.0], [100.0, 120.0], [90.0, 170.0], [180.0, 170.0], [230.0, 168.0]]),
    np.array([[190.0, 60.0], [188.0, 140.0], [186.0, 220.0], [185.0, 290.0]]),
]


def test_a_redrawn_drawing_keeps_its_strokes_near_where_they_were():
    size = 250.0  # FOUR's height
    for seed in range(20):
        variant = strokes_redraw(FOUR, rng=np.random.default_rng(seed))
        assert [len(s) for s in variant] == [len(s) for s in FOUR]  # too few points to trim
        for moved, stroke in zip(variant, FOUR):
            assert np.abs(moved - stroke).max() < 0.2 * size
            assert np.abs(moved - stroke).max() > 0


def test_a_long_stroke_may_lose_a_little_of_either_end_but_never_most_of_it():
    line = np.stack([np.linspace(0, 300, 100), np.linspace(0, 10, 100)], axis=1)
    lengths = [len(strokes_redraw([line], rng=np.random.default_rng(seed))[0]) for seed in range(30)]
    assert min(lengths) >= 84 and max(lengths) <= 100 and len(set(lengths)) > 1


def test_redrawn_inputs_differ_from_the_drawing_and_from_each_other_but_not_between_equal_seeds():
    original = strokes_to_input(FOUR).image
    first = redrawn_inputs(FOUR, count=4, rng=np.random.default_rng(7))
    again = redrawn_inputs(FOUR, count=4, rng=np.random.default_rng(7))
    assert len(first) == 4 and all(image.shape == (28, 28) and image.dtype == np.uint8 for image in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(not np.array_equal(image, original) for image in first)
    assert len({image.tobytes() for image in first}) == 4
    # Still the same drawing, roughly: most of the ink where the drawing's ink is.
    for image in first:
        overlap = np.minimum(image, original).sum() / max(original.sum(), 1)
        assert overlap > 0.3


@pytest.mark.django_db
def test_only_samples_with_strokes_are_redrawn_each_with_its_label():
    with_strokes = SampleFactory(label=4, strokes=[stroke.tolist() for stroke in FOUR])
    image_only = SampleFactory(label=7, strokes=None)
    also = SampleFactory(label=1, strokes=[[[50, 20], [52, 120], [53, 260]]])

    redrawn, owners = samples_redraw(samples=[with_strokes, image_only, also], count=3, seed=0)

    assert len(redrawn) == 6 and owners.tolist() == [0, 0, 0, 2, 2, 2]
    assert redrawn.labels.tolist() == [4, 4, 4, 1, 1, 1]
    none, no_owners = samples_redraw(samples=[with_strokes, also], count=0, seed=0)
    assert len(none) == 0 and len(no_owners) == 0
