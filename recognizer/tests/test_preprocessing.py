import io

import cv2
import numpy as np
import pytest
from PIL import Image

from recognizer import preprocessing
from recognizer.net import normalize_tensor
from recognizer.preprocessing import (
    BOX,
    ImageTooLarge,
    PreprocessingError,
    center_digit,
    decode_data_url,
    normalize,
    to_model_input,
)
from recognizer.tests.drawings import CANVAS, data_url, draw, png
from training.nn.data import mnist_load


def flatten_on_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:] / 255.0
    return (rgba[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)


def test_digit_moved_elsewhere_on_the_canvas_gives_exactly_the_same_input():
    centred = to_model_input(png(draw(7, centre=(0.5, 0.5), height=0.4)))
    moved = to_model_input(png(draw(7, centre=(0.25, 0.75), height=0.4)))  # 100 px left, 100 down
    assert np.array_equal(centred, moved)


def test_small_off_centre_digit_gives_the_same_input_as_the_same_digit_centred():
    centred = to_model_input(png(draw(7, centre=(0.5, 0.5), height=0.6))).astype(int)
    # A third of the size, in the top-left corner, with a pen scaled to match.
    corner = to_model_input(png(draw(7, centre=(0.2, 0.2), height=0.2, pen=8))).astype(int)
    # Rounding the centre of mass to whole pixels may land one pixel apart at another scale.
    best = min(
        np.abs(centred - np.roll(corner, (dy, dx), axis=(0, 1))).mean() for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    )
    assert best < 6  # of 255


def test_digit_is_scaled_into_the_20px_box_with_its_centre_of_mass_at_the_centre():
    image = to_model_input(png(draw(2, centre=(0.3, 0.7), height=0.5)))
    rows, cols = np.nonzero(image > preprocessing.INK_THRESHOLD)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 in (BOX - 1, BOX, BOX + 1)
    moments = cv2.moments(image)
    # MNIST's own digits have their centre of mass at pixel (14, 14).
    assert abs(moments["m10"] / moments["m00"] - 14) <= 0.5
    assert abs(moments["m01"] / moments["m00"] - 14) <= 0.5


def test_tall_thin_digit_keeps_its_aspect_ratio():
    image = to_model_input(png(draw(1, height=0.8)))
    rows, cols = np.nonzero(image > preprocessing.INK_THRESHOLD)
    assert rows.max() - rows.min() + 1 >= BOX - 1
    assert cols.max() - cols.min() + 1 <= 4  # a stroke, not stretched to a square


def test_empty_canvas_has_no_digit():
    assert to_model_input(png(np.zeros((CANVAS, CANVAS, 4), np.uint8))) is None
    assert to_model_input(png(np.full((CANVAS, CANVAS, 3), 255, np.uint8))) is None


def test_transparent_background_is_composited_over_white():
    # A canvas exports transparent *black* pixels around the ink: read naively, all of it is ink.
    rgba = draw(3)
    flat = to_model_input(png(flatten_on_white(rgba)))
    assert np.array_equal(to_model_input(png(rgba)), flat)
    assert (flat > 0).mean() < 0.5  # a digit, not a filled square


def test_jpeg_drawing_gives_nearly_the_same_input_as_png():
    rgb = flatten_on_white(draw(4))
    ok, jpeg = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    from_png, from_jpeg = to_model_input(png(rgb)), to_model_input(jpeg.tobytes())
    assert np.abs(from_png.astype(int) - from_jpeg.astype(int)).mean() < 4


def test_coloured_ink_reads_like_black_ink():
    rgb = flatten_on_white(draw(0))
    blue = rgb.copy()
    blue[(rgb < 128).all(axis=2)] = (200, 40, 0)  # BGR: dark blue ink
    assert (to_model_input(png(blue)) > preprocessing.INK_THRESHOLD).sum() > 50


def test_mnist_digits_pass_through_almost_unchanged(mnist_dir):
    # MNIST digits are already what the pipeline makes: running them through it again must not
    # move or resize them, or what the model learns from and what it reads would differ.
    test = mnist_load(data_dir=mnist_dir, train=False)
    images = test.images[:300].numpy()
    again = np.stack([center_digit(image) for image in images])
    difference = np.abs(again.astype(int) - images.astype(int)).mean(axis=(1, 2))
    assert difference.mean() < 0.5  # of 255
    assert (difference == 0).mean() > 0.5  # most come out byte for byte the same


def test_normalize_matches_mnist_statistics(mnist_dir):
    train = mnist_load(data_dir=mnist_dir, train=True)
    x = normalize(train.images[:20000].numpy())
    assert x.shape == (20000, 1, 28, 28) and x.dtype == np.float32
    assert abs(x.mean().item()) < 0.02
    assert abs(x.std().item() - 1) < 0.02
    assert np.allclose(normalize(train.images[:5].numpy()), normalize(train.images[:5].numpy() / 255.0))
    # training's torch twin gives the same numbers
    assert np.allclose(normalize_tensor(train.images[:5]).numpy(), normalize(train.images[:5].numpy()), atol=1e-6)


@pytest.mark.parametrize(
    "text, message",
    [
        ("hello", "data URL"),
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", "PNG or JPEG"),
        ("data:text/plain;base64,aGVsbG8=", "PNG or JPEG"),
        ("data:image/png;base64,@@@notbase64@@@", "base64"),
        ("data:image/png,rawdata", "data URL"),
    ],
)
def test_malformed_data_url_is_rejected_with_a_reason(text, message):
    with pytest.raises(PreprocessingError, match=message):
        decode_data_url(text)


def test_bytes_that_are_not_an_image_are_rejected():
    with pytest.raises(PreprocessingError, match="decoded"):
        to_model_input(b"certainly not a PNG")


def test_gif_is_rejected_even_when_declared_as_png():
    buffer = io.BytesIO()
    Image.new("L", (10, 10)).save(buffer, format="GIF")
    with pytest.raises(PreprocessingError, match="PNG or JPEG"):
        to_model_input(decode_data_url(data_url(buffer.getvalue())))


def test_image_with_enormous_dimensions_is_refused_before_decoding():
    # 20000x20000 compresses to a few hundred kB but would take 400 MB to decode.
    buffer = io.BytesIO()
    Image.new("L", (20000, 20000), 255).save(buffer, format="PNG")
    assert len(buffer.getvalue()) < preprocessing.MAX_IMAGE_BYTES
    with pytest.raises(ImageTooLarge) as caught:
        to_model_input(buffer.getvalue())
    assert caught.value.status == 413


def test_too_many_bytes_are_refused():
    with pytest.raises(ImageTooLarge):
        decode_data_url("data:image/png;base64," + "A" * (preprocessing.MAX_IMAGE_BYTES * 2))
