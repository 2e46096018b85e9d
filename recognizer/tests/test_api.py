import base64
import io
import json

import pytest
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from recognizer.registry import model_load
from recognizer.tests.drawings import STROKES, blank, data_url, drawn

PREDICT = "/api/predict/"


@pytest.fixture
def api():
    return APIClient()


def post(api, body, **kwargs):
    return api.post(PREDICT, body, format="json", **kwargs)


@pytest.mark.parametrize("digit", sorted(STROKES))
def test_predict_reads_a_drawn_digit_with_the_shipped_model(api, settings, digit):
    response = post(api, {"image": drawn(digit, centre=(0.4, 0.6), height=0.5)})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["digit"] == digit
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1, abs=1e-6)
    assert body["confidence"] == max(body["probabilities"]) == body["probabilities"][digit]
    assert body["model"] == model_load(path=settings.SHIPPED_MODEL).version
    assert body["input_image"].startswith("data:image/png;base64,")
    preview = Image.open(io.BytesIO(base64.b64decode(body["input_image"].split(",", 1)[1])))
    assert preview.size == (28, 28)


def test_predict_on_an_empty_canvas_answers_no_digit(api):
    response = post(api, {"image": blank()})
    assert response.status_code == 200
    body = response.json()
    assert body["digit"] is None and body["probabilities"] is None and body["confidence"] is None
    assert body["model"]


def test_predict_accepts_jpeg(api):
    import cv2

    from recognizer.tests.drawings import draw

    rgba = draw(7)
    white = (rgba[..., :3] * (rgba[..., 3:] / 255) + 255 * (1 - rgba[..., 3:] / 255)).astype("uint8")
    ok, jpeg = cv2.imencode(".jpg", white)
    response = post(api, {"image": data_url(jpeg.tobytes(), "image/jpeg")})
    assert response.status_code == 200
    assert response.json()["digit"] == 7


def png_of_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "body, field_message",
    [
        ({}, "required"),
        ({"image": ""}, "blank"),
        ({"image": 7}, "data URL"),
        ({"image": "not a data url"}, "data URL"),
        ({"image": "data:image/png;base64,%%%"}, "base64"),
        ({"image": "data:image/gif;base64,R0lGODlh"}, "PNG or JPEG"),
        ({"image": data_url(b"plain text, not an image")}, "decoded"),
    ],
)
def test_predict_with_malformed_image_is_rejected_with_a_reason(api, body, field_message):
    response = post(api, body)
    assert response.status_code == 400
    error = response.json()
    assert field_message in error["message"]
    assert field_message in error["extra"]["fields"]["image"][0]


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\u00e9"])
def test_predict_with_a_character_that_is_not_base64_is_rejected(api, escape):
    # Raw JSON, so that a lone surrogate reaches the server as the client wrote it.
    body = '{"image": "data:image/png;base64,iVBO%sRw0KGgo="}' % escape
    response = api.post(PREDICT, body, content_type="application/json")
    assert response.status_code == 400
    assert "base64" in response.json()["extra"]["fields"]["image"][0]


def test_predict_with_a_body_that_is_not_json_is_rejected(api):
    response = api.post(PREDICT, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["message"]


def test_predict_with_a_form_instead_of_json_is_rejected(api):
    response = api.post(PREDICT, {"image": blank()})  # multipart
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["message"]


def test_predict_with_an_image_of_enormous_dimensions_is_rejected(api):
    response = post(api, {"image": data_url(png_of_size(8000, 8000))})
    assert response.status_code == 413
    assert "pixels" in response.json()["message"]


def test_predict_only_accepts_post(api):
    response = api.get(PREDICT)
    assert response.status_code == 405
    assert response.json()["message"]


def test_predict_without_a_usable_model_answers_503_with_a_reason(api, settings, tmp_path):
    settings.SHIPPED_MODEL = tmp_path / "missing.safetensors"
    response = post(api, {"image": drawn(1)})
    assert response.status_code == 503
    assert "missing.safetensors" in response.json()["message"]


def test_predict_is_throttled_per_client(api, monkeypatch):
    # DRF reads the rates once, at import: set them on the class, as settings would at start-up.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"predict": "3/min"})
    codes = [post(api, {"image": blank()}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_health_reports_the_active_model(api, settings):
    body = api.get("/api/health/").json()
    shipped = model_load(path=settings.SHIPPED_MODEL).describe()
    assert body["status"] == "ok" and body["problem"] is None
    assert body["model"]["version"] == shipped["version"]
    assert body["model"]["mnist_test_accuracy"] == shipped["mnist_test_accuracy"]
    assert "trained_at" in body["model"]


def test_health_without_a_model_answers_503(api, settings, tmp_path):
    settings.SHIPPED_MODEL = tmp_path / "missing.safetensors"
    response = api.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "missing.safetensors" in response.json()["problem"]


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert {"/api/predict/", "/api/health/", "/api/feedback/"} <= set(paths)
    docs = client.get(reverse("docs"))
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn.jsdelivr" not in docs.content  # served from this site, works offline


def test_page_has_one_canvas_a_clear_button_and_a_csrf_cookie(client):
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<canvas") == 1
    assert ">Clear</button>" in html
    assert "csrftoken" in response.cookies
    assert 'data-predict-url="/api/predict/"' in html
