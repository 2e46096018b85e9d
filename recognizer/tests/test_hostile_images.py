"""Images built to cost a server dearly, and photos as phones send them."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from rest_framework.test import APIClient

from recognizer import preprocessing
from recognizer.preprocessing import MAX_DECODED_BYTES, MAX_DECODED_SIDE, ImageTooLarge, decode_image, drawing_png, to_model_input
from recognizer.services import digit_predict
from recognizer.tests.drawings import data_url, draw, png, same_picture


def png_of(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


def jpeg_of(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def on_white(digit: int, size: int = 400) -> np.ndarray:
    """The digit drawn dark on white, `size` pixels a side, as a photo or a scan would have it."""
    rgba = draw(digit)
    alpha = rgba[..., 3:] / 255.0
    white = (rgba[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    return cv2.resize(cv2.cvtColor(white, cv2.COLOR_BGR2GRAY), (size, size), interpolation=cv2.INTER_LINEAR)


def test_a_16_bit_rgba_png_of_4096x4096_is_refused_from_its_header_with_what_it_would_cost():
    data = png_of(np.zeros((4096, 4096, 4), np.uint16))  # 170 kB that would decode to 128 MB
    assert len(data) < 200_000
    with pytest.raises(ImageTooLarge, match=r"4096x4096 and would take 128 MB to decode; at most 16 MB") as caught:
        decode_image(data)
    assert caught.value.status == 413
    response = APIClient().post("/api/predict/", {"image": data_url(data)}, format="json")
    assert response.status_code == 413 and "128 MB" in response.json()["message"]


@pytest.mark.parametrize(
    "shape, dtype",
    [((2048, 2048, 4), np.uint8), ((1448, 1448, 4), np.uint16), ((4096, 4096), np.uint8)],
    ids=["8-bit RGBA 2048", "16-bit RGBA 1448", "8-bit gray 4096"],
)
def test_pngs_within_the_decoding_budget_are_read(shape, dtype):
    array = np.zeros(shape, dtype)  # transparent, or black: no ink either way once on white
    if array.ndim == 2:
        array[:] = np.iinfo(dtype).max
    assert array.nbytes <= MAX_DECODED_BYTES
    assert to_model_input(png_of(array)) is None


def test_a_big_image_is_decoded_reduced_and_still_reads():
    for big in (jpeg_of(on_white(7, 4096)), png_of(on_white(7, 4096))):  # JPEG decoded at 1/2 by libjpeg
        assert decode_image(big).shape == (MAX_DECODED_SIDE, MAX_DECODED_SIDE)
        assert digit_predict(image=big).digit == 7


def test_a_big_progressive_jpeg_is_refused_since_libjpeg_keeps_all_its_coefficients():
    with pytest.raises(ImageTooLarge, match="would take 96 MB to decode"):
        decode_image(jpeg_of(np.full((4096, 4096, 3), 255, np.uint8), progressive=True))
    assert to_model_input(jpeg_of(on_white(4), progressive=True)) is not None  # a small one reads


@pytest.mark.parametrize("orientation, turn", [(3, cv2.ROTATE_180), (6, cv2.ROTATE_90_COUNTERCLOCKWISE), (8, cv2.ROTATE_90_CLOCKWISE)])
def test_a_jpeg_photo_is_read_upright_by_its_exif_orientation(orientation, turn):
    upright = on_white(7)
    stored = cv2.rotate(upright, turn)  # as the camera's sensor stored it
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = jpeg_of(stored, exif=exif.tobytes())
    assert np.abs(to_model_input(photo).astype(int) - to_model_input(jpeg_of(upright)).astype(int)).mean() < 3
    assert APIClient().post("/api/predict/", {"image": data_url(photo, "image/jpeg")}, format="json").json()["digit"] == 7


def test_a_stored_drawing_is_the_image_re_encoded_and_bounded_whatever_was_sent():
    trailing = png(draw(3)) + b"\x00" * 1_450_000
    stored = drawing_png(trailing)
    assert len(stored) < 20_000 and same_picture(decode_image(stored), decode_image(trailing))
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1200), np.uint8)  # the worst case to compress
    stored = drawing_png(png_of(noise))
    # Noise does not fit in DRAWING_MAX_BYTES at 400 px: it is kept smaller instead.
    assert max(decode_image(stored).shape) < preprocessing.DRAWING_SIDE
    assert len(stored) <= preprocessing.DRAWING_MAX_BYTES
