"""Properties that hold for any input at all: preprocessing and the API against arbitrary
bytes, images and JSON. An input is turned into a 28x28 image (or "no ink"), or refused with
PreprocessingError; the API answers 200/201 or a 4xx in its JSON format, never a 500."""

import json

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from recognizer.preprocessing import PreprocessingError, decode_data_url, drawing_png, to_model_input
from recognizer.tests.drawings import data_url

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START = b"\xff\xd8\xff"
FIXTURES = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def assert_model_input_or_refused(data: bytes) -> None:
    try:
        image = to_model_input(data)
    except PreprocessingError as error:
        assert str(error) and error.status in (400, 413)
        return
    assert image is None or (image.shape == (28, 28) and image.dtype == np.uint8)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=4000), st.binary(max_size=4000).map(lambda b: PNG_SIGNATURE + b), st.binary(max_size=4000).map(lambda b: JPEG_START + b)))
def test_any_bytes_become_an_input_or_a_preprocessing_error(data):
    assert_model_input_or_refused(data)


images = st.one_of(
    arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64))),
    arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64), st.sampled_from([3, 4]))),
    arrays(np.uint16, st.tuples(st.integers(1, 64), st.integers(1, 64), st.sampled_from([1, 3, 4]))),
)


@settings(max_examples=200, deadline=None)
@given(images, st.sampled_from([".png", ".jpg"]), st.integers(0, 64))
def test_any_real_image_or_a_truncated_one_becomes_an_input_or_a_preprocessing_error(pixels, ext, cut):
    if ext == ".jpg":
        pixels = (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels
        pixels = pixels[..., :3] if pixels.ndim == 3 else pixels
    ok, encoded = cv2.imencode(ext, pixels)
    assert ok
    data = encoded.tobytes()
    assert_model_input_or_refused(data)
    assert_model_input_or_refused(data[: max(1, len(data) - cut)])
    if ext == ".png":
        stored = drawing_png(data)  # what feedback keeps: a PNG that decodes to the same ink
        assert stored.startswith(PNG_SIGNATURE)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.text(max_size=200).map(lambda t: "data:image/png;base64," + t))
def test_any_text_is_a_data_url_or_a_preprocessing_error(text):
    try:
        assert isinstance(decode_data_url(text), bytes)
    except PreprocessingError as error:
        assert str(error)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"image": json_values}, optional={"label": json_values}),
    st.fixed_dictionaries({"image": st.binary(max_size=300).map(data_url)}, optional={"label": st.integers(-2, 12)}),
)


@pytest.fixture
def unthrottled(monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"predict": None, "feedback": None})


@settings(FIXTURES, max_examples=150)
@given(body=bodies, path=st.sampled_from(["/api/predict/", "/api/feedback/"]))
def test_any_json_gets_an_answer_or_a_json_4xx_never_a_500(db, unthrottled, body, path):
    response = APIClient().post(path, json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 201) or 400 <= response.status_code < 500, response.content[:300]
    assert response["Content-Type"] == "application/json"
    if response.status_code >= 400:
        assert response.json()["message"]


@settings(FIXTURES, max_examples=100)
@given(
    raw=st.binary(max_size=500) | st.integers(1, 200_000).map(lambda n: ("[" * n + "]" * n).encode()),
    path=st.sampled_from(["/api/predict/", "/api/feedback/"]),
)
def test_any_bytes_as_a_body_get_a_json_4xx_never_a_500(db, unthrottled, raw, path):
    response = APIClient().post(path, raw, content_type="application/json")
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response.json()["message"]
