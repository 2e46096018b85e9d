import base64
import io
import json

import pytest
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from recognizer.fields import MAX_POINTS, MAX_STROKES
from recognizer.modelfile import model_load
from recognizer.preprocessing import PAGE_BRUSH
from recognizer.services import SURE_THRESHOLD
from recognizer.tests.drawings import ONE_OR_SEVEN, STROKES, as_json, blank, data_url, drawn, strokes

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
    assert sum(body["probabilities"]) + body["not_a_digit"] == pytest.approx(1, abs=1e-6)
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
    assert b"<script>" not in docs.content  # no inline script: a Content-Security-Policy may forbid it


def test_page_has_one_canvas_a_clear_button_and_a_csrf_cookie(client):
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<canvas") == 1
    assert ">Clear</button>" in html
    assert "csrftoken" in response.cookies
    assert 'data-predict-url="/api/predict/"' in html
    assert 'role="img"' in html.split("<canvas")[1].split(">")[0]  # so its aria-label is kept
    assert f'data-brush="{PAGE_BRUSH}"' in html.split("<canvas")[1].split(">")[0]  # draw.js's pen: one width, the server's


def test_page_names_the_serving_model_and_its_mnist_accuracy_in_words(client, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL).describe()
    html = " ".join(client.get("/").content.decode().split())
    from datetime import datetime

    from django.utils.dateformat import format as date_format
    from django.utils.timezone import localtime

    accuracy = f"{shipped['mnist_test_accuracy'] * 100:.2f}%"
    trained = date_format(localtime(datetime.fromisoformat(shipped["trained_at"])), "j F Y")  # "28 November 2026"
    assert f"model <span class=\"version\" id=\"model-version\">{shipped['version']}</span>, trained {trained}." in html
    assert f"It reads {accuracy} of MNIST's 10,000 test digits right." in html


def test_page_without_a_usable_model_says_so_in_words(client, settings, tmp_path):
    settings.SHIPPED_MODEL = tmp_path / "missing.safetensors"
    html = client.get("/").content.decode()
    assert "No model is serving right now" in html and "missing.safetensors" in html


# -- strokes --------------------------------------------------------------------------------


@pytest.mark.parametrize("digit", sorted(STROKES))
def test_predict_reads_strokes_of_a_digit_drawn_at_a_tenth_of_the_canvas(api, digit):
    response = post(api, {"strokes": as_json(strokes(digit, centre=(0.2, 0.8), height=0.1))})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["digit"] == digit and body["top_two"][0] == digit
    assert body["sure"] is (body["confidence"] >= SURE_THRESHOLD)
    assert body["reason"] is None and body["hint"] is None


def test_predict_of_a_tap_answers_too_small_instead_of_a_guess(api):
    response = post(api, {"strokes": [[[200, 200]]]})
    assert response.status_code == 200
    body = response.json()
    assert body["digit"] is None and body["probabilities"] is None and body["sure"] is None
    assert body["reason"] == "too_small"
    assert body["hint"] == "Too small to read: draw bigger."


def test_predict_of_an_ambiguous_drawing_is_not_sure_and_names_the_top_two(api):
    body = post(api, {"strokes": as_json(ONE_OR_SEVEN)}).json()
    assert body["sure"] is False
    assert body["confidence"] < SURE_THRESHOLD
    first, second = body["top_two"]
    assert first == body["digit"] and {first, second} == {1, 7}
    probabilities = body["probabilities"]
    assert probabilities[first] >= probabilities[second] >= max(p for d, p in enumerate(probabilities) if d not in (first, second))


def test_confidence_is_calibrated_with_the_models_temperature(api, settings):
    import torch

    from recognizer.preprocessing import normalize, strokes_to_input
    from recognizer.store import shipped_model

    model = shipped_model()
    assert model.temperature == model_load(path=settings.SHIPPED_MODEL).temperature != 1.0  # fitted when the model was made
    body = post(api, {"strokes": as_json(ONE_OR_SEVEN)}).json()
    logits = torch.from_numpy(model.serving_net()(normalize(strokes_to_input(ONE_OR_SEVEN).image))).double()
    expected = torch.softmax(logits / model.temperature, dim=1)[0]
    assert body["probabilities"] + [body["not_a_digit"]] == pytest.approx(expected.tolist(), abs=1e-6)
    assert body["probabilities"] != pytest.approx(torch.softmax(logits, dim=1)[0, :10].tolist(), abs=1e-3)


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "exactly one"),
        ({"image": drawn(1), "strokes": [[[1, 2], [3, 4]]]}, "exactly one"),
        ({"strokes": "1,2 3,4"}, "list of strokes"),
        ({"strokes": [[1, 2], [3, 4]]}, "stroke 0, point 0: a point is [x, y]"),
        ({"strokes": []}, "1 to"),
        ({"strokes": [[[1, 2]]] * (MAX_STROKES + 1)}, "1 to"),
        ({"strokes": [[]]}, "stroke 0 has no points"),
        ({"strokes": [[[1, 2]], [[1, 2, 3]]]}, "stroke 1, point 0"),
        ({"strokes": [[[1, 2], ["3", 4]]]}, "stroke 0, point 1"),
        ({"strokes": [[[1, 2], [True, 4]]]}, "stroke 0, point 1"),
        ({"strokes": [[[1, 2], None]]}, "stroke 0, point 1"),
        ({"strokes": [[[1, 2], [20_000, 4]]]}, "from -10,000 to 10,000"),
        ({"strokes": [[[1, 2], [10**400, 4]]]}, "from -10,000 to 10,000"),
        ({"strokes": [[[i, i] for i in range(MAX_POINTS + 1)]]}, f"{MAX_POINTS:,} points"),
    ],
)
def test_predict_with_malformed_strokes_is_rejected_naming_the_problem(api, body, message):
    response = post(api, body)
    assert response.status_code == 400, response.content
    assert message in response.json()["message"]


def test_predict_with_a_coordinate_that_is_not_finite_is_rejected(api):
    # 1e999 is valid JSON that Python reads as infinity.
    response = api.post(PREDICT, '{"strokes": [[[1, 2], [1e999, 4]]]}', content_type="application/json")
    assert response.status_code == 400
    assert "finite" in response.json()["message"]


def test_openapi_schema_documents_strokes_and_image_for_predict_and_feedback(client):
    schema = json.loads(client.get("/api/schema/", HTTP_ACCEPT="application/json").content)
    for path in ("/api/predict/", "/api/feedback/"):
        ref = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        properties = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
        assert {"strokes", "image"} <= set(properties)
        assert properties["strokes"]["items"]["items"]["maxItems"] == 2
        assert "canvas pixels" in properties["strokes"]["description"]
