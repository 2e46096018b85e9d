import numpy as np
import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from feedback.models import Sample
from recognizer.preprocessing import DRAWING_SIDE, decode_data_url, decode_image, strokes_to_input, to_model_input
from recognizer.services import digit_predict
from recognizer.serving import active_model
from recognizer.tests.drawings import ONE_OR_SEVEN, as_json, blank, data_url, draw, drawn, png, same_picture, strokes

FEEDBACK = "/api/feedback/"


@pytest.fixture
def api(db):
    return APIClient()


def test_feedback_stores_the_drawing_what_the_model_saw_its_guess_and_version(api):
    image = drawn(1, centre=(0.3, 0.6), height=0.5)
    response = api.post(FEEDBACK, {"image": image, "label": 7}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    sample = Sample.objects.get(pk=body["id"])
    assert (sample.label, sample.guess) == (7, 1)  # the model read a 1; the user says 7
    assert body["guess"] == 1 and body["is_correction"] is True and body["status"] == "new"
    assert same_picture(decode_image(bytes(sample.drawing)), decode_image(decode_data_url(image)))
    assert np.array_equal(sample.input_array(), to_model_input(decode_data_url(image)))
    assert sample.model_version == active_model().version == body["model"]
    assert 0 < sample.confidence <= 1


def test_feedback_confirming_a_right_guess_is_stored_as_a_positive_sample(api):
    response = api.post(FEEDBACK, {"image": drawn(4), "label": 4}, format="json")
    assert response.status_code == 201
    assert response.json()["is_correction"] is False


def test_feedback_ignores_a_guess_sent_by_the_client(api):
    response = api.post(FEEDBACK, {"image": drawn(0), "label": 6, "guess": 6, "confidence": 1.0}, format="json")
    sample = Sample.objects.get(pk=response.json()["id"])
    assert sample.guess == 0 and sample.confidence < 1.0


@pytest.mark.parametrize("label", [-1, 10, 99, "seven", None, 3.5])
def test_feedback_with_label_out_of_range_is_rejected(api, label):
    response = api.post(FEEDBACK, {"image": drawn(3), "label": label}, format="json")
    assert response.status_code == 400
    assert "label" in response.json()["extra"]["fields"]
    assert Sample.objects.count() == 0


def test_feedback_without_label_is_rejected(api):
    response = api.post(FEEDBACK, {"image": drawn(3)}, format="json")
    assert response.status_code == 400
    assert response.json()["extra"]["fields"]["label"] == ["This field is required."]


def test_feedback_on_an_empty_canvas_is_rejected_and_nothing_is_stored(api):
    response = api.post(FEEDBACK, {"image": blank(), "label": 3}, format="json")
    assert response.status_code == 400
    assert "no ink" in response.json()["message"]
    assert Sample.objects.count() == 0


@pytest.mark.parametrize(
    "image",
    ["nope", "data:image/png;base64,###", data_url(b"GIF89a not really"), data_url(b"\x89PNG\r\n\x1a\n truncated")],
)
def test_feedback_with_malformed_image_is_rejected_and_nothing_is_stored(api, image):
    response = api.post(FEEDBACK, {"image": image, "label": 3}, format="json")
    assert response.status_code == 400
    assert "image" in response.json()["extra"]["fields"]
    assert Sample.objects.count() == 0


def test_feedback_with_a_body_that_is_not_json_is_rejected(api):
    response = api.post(FEEDBACK, "label=3", content_type="application/json")
    assert response.status_code == 400
    assert Sample.objects.count() == 0


def test_feedback_from_the_page_with_its_csrf_token_is_accepted(page_client):
    response = page_client.post(FEEDBACK, {"image": drawn(2), "label": 2}, format="json")
    assert response.status_code == 201


def test_feedback_without_a_csrf_token_is_refused(page_client):
    page_client.credentials()  # the cookie is there, the header is not: a forged cross-site post
    response = page_client.post(FEEDBACK, {"image": drawn(2), "label": 2}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]
    assert Sample.objects.count() == 0


def test_feedback_is_throttled_so_one_client_cannot_flood_the_database(api, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"feedback": "2/min", "predict": None})
    codes = [api.post(FEEDBACK, {"image": drawn(7), "label": 1}, format="json").status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    assert Sample.objects.count() == 2
    assert api.post("/api/predict/", {"image": drawn(7)}, format="json").status_code == 200  # guessing goes on


def test_feedback_keeps_existing_samples_when_a_bad_one_arrives(api):
    api.post(FEEDBACK, {"image": drawn(1), "label": 1}, format="json")
    api.post(FEEDBACK, {"image": drawn(1), "label": 12}, format="json")
    assert list(Sample.objects.values_list("label", flat=True)) == [1]


def test_feedback_stores_what_the_drawing_is_never_the_bytes_the_client_sent(api):
    sent = png(draw(4)) + b"\x00" * 1_450_000  # 1.45 MB after the PNG's end
    response = api.post(FEEDBACK, {"image": data_url(sent), "label": 4}, format="json")
    assert response.status_code == 201
    stored = bytes(Sample.objects.get().drawing)
    assert len(stored) < 20_000 and stored.endswith(b"IEND\xaeB`\x82")
    assert same_picture(decode_image(stored), decode_image(sent))


def test_feedback_keeps_a_large_drawing_at_most_canvas_sized(api):
    import cv2

    rgba = cv2.resize(draw(4), (1600, 1600), interpolation=cv2.INTER_LINEAR)
    response = api.post(FEEDBACK, {"image": data_url(png(rgba)), "label": 4}, format="json")
    assert response.status_code == 201
    assert decode_image(bytes(Sample.objects.get().drawing)).shape == (DRAWING_SIDE, DRAWING_SIDE)


def test_feedback_with_strokes_keeps_them_beside_the_drawing_and_what_the_model_saw(api):
    posted = as_json(strokes(4, centre=(0.8, 0.2), height=0.12))
    response = api.post(FEEDBACK, {"strokes": posted, "label": 4}, format="json")
    assert response.status_code == 201, response.content
    sample = Sample.objects.get(pk=response.json()["id"])
    assert sample.strokes == posted
    read = strokes_to_input([np.array(stroke) for stroke in posted]).image
    assert np.array_equal(np.frombuffer(bytes(sample.model_input), np.uint8).reshape(28, 28), read)
    assert bytes(sample.drawing).startswith(b"\x89PNG")  # the path drawn with the page's brush, for review
    assert sample.guess == response.json()["guess"]


def test_a_stored_strokes_sample_is_drawn_again_with_todays_preprocessing(api, monkeypatch):
    response = api.post(FEEDBACK, {"strokes": as_json(strokes(7)), "label": 7}, format="json")
    sample = Sample.objects.get(pk=response.json()["id"])
    # Preprocessing changes (here: a wider line); training reads the strokes anew, not the old input.
    monkeypatch.setattr("recognizer.preprocessing.LINE_WIDTH", 3.0)
    posted = [np.array(stroke) for stroke in as_json(strokes(7))]
    assert np.array_equal(sample.input_array(), strokes_to_input(posted, line_width=3.0).image)
    assert not np.array_equal(sample.input_array(), np.frombuffer(bytes(sample.model_input), np.uint8).reshape(28, 28))


def test_feedback_on_an_unsure_guess_is_stored_all_the_same(api):
    response = api.post(FEEDBACK, {"strokes": as_json(ONE_OR_SEVEN), "label": 1}, format="json")
    assert response.status_code == 201
    assert Sample.objects.get().confidence < 0.97


def test_feedback_on_a_tap_is_rejected_as_too_small_and_nothing_is_stored(api):
    response = api.post(FEEDBACK, {"strokes": [[[10, 10]]], "label": 1}, format="json")
    assert response.status_code == 400
    assert "too small" in response.json()["extra"]["fields"]["strokes"][0]
    assert Sample.objects.count() == 0


def test_feedback_with_both_strokes_and_image_is_rejected(api):
    response = api.post(FEEDBACK, {"strokes": as_json(strokes(1)), "image": drawn(1), "label": 1}, format="json")
    assert response.status_code == 400
    assert "exactly one" in response.json()["message"]
    assert Sample.objects.count() == 0


def test_feedback_sent_again_with_the_same_client_id_is_stored_once_and_answers_the_first_copy(api):
    body = {"strokes": as_json(strokes(7)), "label": 1, "client_id": "2f1c7a52-0d8e-4b7e-9d2a-5c8e1f3b6a10"}
    first = api.post(FEEDBACK, body, format="json")
    again = api.post(FEEDBACK, body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["client_id"] == body["client_id"]
    assert Sample.objects.count() == 1


def test_feedback_reads_the_drawing_before_taking_the_database_write_lock(transactional_db, monkeypatch):
    """With SQLite's IMMEDIATE transactions a transaction holds the write lock from its start:
    guessing inside it would make every other writer wait for the model."""
    from django.db import connection

    import feedback.services

    seen = []

    def predict_and_look(**kwargs):
        seen.append(connection.in_atomic_block)
        return digit_predict(**kwargs)

    monkeypatch.setattr(feedback.services, "digit_predict", predict_and_look)
    body = {"strokes": as_json(strokes(7)), "label": 1, "client_id": "5d2b8c1e-6f3a-4d9b-a1e7-0c4f8b2d6e93"}
    assert APIClient().post(FEEDBACK, body, format="json").status_code == 201
    assert seen == [False]
    assert Sample.objects.get().guess == 7


def test_feedback_with_another_client_id_or_none_is_stored_anew(api):
    body = {"strokes": as_json(strokes(7)), "label": 1}
    for client_id in ["2f1c7a52-0d8e-4b7e-9d2a-5c8e1f3b6a10", "9b0e4f1d-3c2a-4e5b-8f6d-7a1c2b3d4e5f", None]:
        assert api.post(FEEDBACK, {**body, "client_id": client_id}, format="json").status_code == 201
    assert api.post(FEEDBACK, body, format="json").status_code == 201
    assert Sample.objects.count() == 4


def test_feedback_with_a_client_id_that_is_not_a_uuid_is_rejected(api):
    response = api.post(FEEDBACK, {"strokes": as_json(strokes(7)), "label": 1, "client_id": "retry-1"}, format="json")
    assert response.status_code == 400
    assert "client_id" in response.json()["extra"]["fields"]
    assert Sample.objects.count() == 0


def test_feedback_on_a_drawing_the_model_called_not_a_digit_is_stored_with_not_a_digit_as_the_guess(api):
    from recognizer.labels import NOT_A_DIGIT
    from recognizer.tests.test_not_a_digit import HASH

    prediction = digit_predict(strokes=HASH)
    assert prediction.reason == "not_a_digit"
    response = api.post(FEEDBACK, {"strokes": as_json(HASH), "label": 2}, format="json")
    assert response.status_code == 201, response.content
    sample = Sample.objects.get()
    assert sample.guess == NOT_A_DIGIT and sample.is_correction
    assert sample.confidence == pytest.approx(prediction.not_a_digit)
