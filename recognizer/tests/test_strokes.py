"""Strokes in: the pen's path drawn at one line width, whatever size the digit was drawn."""

import cv2
import numpy as np
import pytest

from recognizer import preprocessing
from recognizer.preprocessing import (
    BOX,
    LINE_WIDTH,
    image_to_input,
    strokes_to_drawing,
    strokes_to_input,
)
from recognizer.tests.drawings import PEN, draw, png, strokes


def ink_box(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(image > preprocessing.INK_THRESHOLD)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def stroke_width(image: np.ndarray) -> float:
    """Twice the ink's area over its outline: the width of a strip."""
    ink = (image >= 128).astype(np.uint8)
    contours, _ = cv2.findContours(ink, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return 2 * ink.sum() / sum(cv2.arcLength(c, True) for c in contours)


def test_a_digit_drawn_tiny_gives_the_same_input_as_drawn_large():
    large = strokes_to_input(strokes(3, centre=(0.5, 0.5), height=0.8)).image.astype(int)
    tiny = strokes_to_input(strokes(3, centre=(0.1, 0.9), height=0.08)).image.astype(int)
    assert np.abs(large - tiny).max() <= 2  # rounding of the points, nothing more


def test_the_line_is_as_wide_as_mnists_whatever_size_the_digit_was_drawn():
    for height in (0.08, 0.3, 0.9):
        image = strokes_to_input(strokes(2, height=height)).image
        assert LINE_WIDTH - 0.5 <= stroke_width(image) <= LINE_WIDTH + 1.0


def test_the_bitmap_of_a_small_digit_is_a_blob_but_its_strokes_are_not():
    # Why strokes: the page's 24 px brush on a digit 10% of the canvas tall fills the box.
    blob = image_to_input(png(draw(3, height=0.1))).image
    drawn = strokes_to_input(strokes(3, height=0.1)).image
    assert stroke_width(blob) > 2 * stroke_width(drawn)


def test_strokes_fill_the_20px_box_with_the_centre_of_mass_at_the_centre():
    image = strokes_to_input(strokes(2, centre=(0.3, 0.6), height=0.4)).image
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert max(ink_box(image)) in (BOX - 1, BOX, BOX + 1)
    moments = cv2.moments(image)
    assert abs(moments["m10"] / moments["m00"] - 14) <= 0.5
    assert abs(moments["m01"] / moments["m00"] - 14) <= 0.5


def test_a_tall_thin_one_is_a_digit_and_keeps_its_aspect_ratio():
    read = strokes_to_input(strokes(1, height=0.15))
    assert read.reason is None
    height, width = ink_box(read.image)
    assert height >= BOX - 1 and width <= 4


@pytest.mark.parametrize(
    "mark",
    [
        [np.array([[200.0, 200.0]])],  # a tap
        [np.array([[200.0, 200.0], [203.5, 201.0], [201.0, 206.0]])],  # a dot, the finger wobbling
        [np.array([[10.0, 10.0]]), np.array([[15.0, 12.0]])],  # two taps
    ],
)
def test_a_tap_or_a_dot_is_too_small_to_read(mark):
    assert strokes_to_input(mark) == preprocessing.TOO_SMALL


def test_a_tap_sent_as_an_image_is_too_small_to_read_and_a_blank_one_has_no_ink():
    tap = np.zeros((400, 400, 4), np.uint8)
    cv2.circle(tap, (200, 200), PEN // 2, (0, 0, 0, 255), -1, cv2.LINE_AA)
    assert image_to_input(png(tap)) == preprocessing.TOO_SMALL
    assert image_to_input(png(np.zeros((400, 400, 4), np.uint8))) == preprocessing.NO_INK


def test_several_strokes_are_drawn_together_and_a_single_point_stroke_is_a_dot():
    four = strokes(4, height=0.5)
    split = [four[0][:2], four[0][1:], np.array([[200.0, 200.0]])]  # one stroke in two, and a dot
    image = strokes_to_input(split).image
    assert (image > 128).sum() > (strokes_to_input(split[:2]).image > 128).sum()


def test_the_drawing_kept_for_review_is_the_path_with_the_pages_brush_bounded_in_size():
    small = strokes_to_drawing(strokes(2, height=0.1))
    assert max(small.shape) <= 0.1 * 400 + PEN + 4  # cropped to the drawing: a small one stays small
    assert small.min() == 0 and small.max() == 255  # black ink on white
    huge = strokes_to_drawing([np.array([[-9000.0, -9000.0], [9000.0, 9000.0]])])
    assert max(huge.shape) <= 402


def test_simplified_strokes_give_real_pen_digits_the_same_guess_and_nearly_the_same_input():
    from recognizer.preprocessing import strokes_simplify
    from recognizer.services import digit_predict
    from testing.pendigits_data import DEFAULT_PATH, layout, load_digits

    if not DEFAULT_PATH.exists():
        pytest.skip(f"no pen digits at {DEFAULT_PATH}")
    digits = load_digits()[::25]  # 300 of 7,494, every writer and digit
    same, differences = 0, []
    for digit in digits:
        sent = layout(digit, 0)
        kept = strokes_simplify(sent)
        assert sum(map(len, kept)) <= sum(map(len, sent))
        same += digit_predict(strokes=sent).digit == digit_predict(strokes=kept).digit
        differences.append(np.abs(strokes_to_input(sent).image.astype(int) - strokes_to_input(kept).image).mean())
    # bench.simplify, all 7,494: 9 guesses change; a pixel moves by 0.34 of 255 on the median digit.
    assert same >= len(digits) - 2
    assert np.median(differences) < 1 and max(differences) < 32
