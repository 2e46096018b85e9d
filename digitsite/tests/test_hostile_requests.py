"""Requests an attacker sends: each answered 4xx (or 3xx) in the API's JSON format, never 500."""

import io
import logging
import sqlite3
import threading
import time
from dataclasses import replace

import pytest
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import connection, transaction
from django.http.multipartparser import MultiPartParserError
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from digitsite.api import exception_handler
from feedback.models import Sample
from recognizer import api as recognizer_api
from recognizer.tests.drawings import drawn

PREDICT, FEEDBACK, HEALTH = "/api/predict/", "/api/feedback/", "/api/health/"


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["message"], str) and body["message"] and "extra" in body
    return body


# -- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [PREDICT, FEEDBACK])
@pytest.mark.parametrize("deep", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_json_nested_100000_deep_is_rejected_as_bad_json(db, path, deep):
    body = assert_json_error(APIClient().post(path, deep, content_type="application/json"), 400)
    assert "nested too deep" in body["message"]


class BodyThatMustNotBeRead(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer):
        raise AssertionError("the body was read")


def test_predict_with_an_enormous_body_is_rejected_before_reading_it(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    environ = {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "200000", "wsgi.input": BodyThatMustNotBeRead()}
    response = Client().generic("POST", PREDICT, b"", **environ)
    assert "too large" in assert_json_error(response, 413)["message"]


FORM_BODIES = {
    "multipart without a boundary": ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n"),
    "1,200 form fields": ("application/x-www-form-urlencoded", "&".join(f"f{i}=1" for i in range(1200)).encode()),
    "150 files": (
        "multipart/form-data; boundary=B",
        b"".join(
            b'--B\r\nContent-Disposition: form-data; name="f%d"; filename="f%d.png"\r\n'
            b"Content-Type: image/png\r\n\r\nx\r\n" % (i, i)
            for i in range(150)
        )
        + b"--B--\r\n",
    ),
}


@pytest.mark.parametrize("kind", FORM_BODIES)
def test_feedback_with_a_form_body_and_a_csrf_cookie_is_refused_without_parsing_it(page_client, kind):
    page_client.credentials()  # the cookie only: Django's CSRF check would look in the form for the token
    content_type, body = FORM_BODIES[kind]
    response = page_client.generic("POST", FEEDBACK, body, content_type=content_type)
    assert "Unsupported media type" in assert_json_error(response, 415)["message"]
    assert Sample.objects.count() == 0


@pytest.mark.parametrize(
    "error, status",
    [
        (TooManyFieldsSent("The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."), 400),
        (TooManyFilesSent("The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES."), 400),
        (MultiPartParserError("Invalid boundary in multipart: None"), 400),
        (RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE."), 413),
    ],
)
def test_djangos_upload_errors_are_answered_as_client_errors(error, status):
    # Any endpoint that reads a form (DRF's request.POST) meets these; none answers 500.
    response = exception_handler(error, {"view": None})
    assert response.status_code == status and response.data["message"]


def test_a_chunked_body_without_a_length_is_answered_411(db):
    client = Client()
    for path in (PREDICT, FEEDBACK):
        response = client.generic("POST", path, b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked")
        assert "Content-Length" in assert_json_error(response, 411)["message"]


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
@pytest.mark.parametrize("path", ["/api/", "/api/nope/", "/api/predict/extra/", "/api/../admin/x"])
def test_unknown_urls_under_api_answer_404_json(client, method, path):
    assert_json_error(getattr(client, method)(path), 404)


def test_predict_without_the_slash_answers_a_json_redirect_that_keeps_the_body():
    client = Client()
    response = client.post("/api/predict", {"image": drawn(7)}, content_type="application/json")
    assert response.status_code == 308 and response["Location"] == "/api/predict/"
    assert response.json()["message"].endswith("/api/predict/")
    followed = client.post("/api/predict", {"image": drawn(7)}, content_type="application/json", follow=True)
    assert followed.status_code == 200 and followed.json()["digit"] == 7


def test_a_response_that_fails_to_render_is_a_logged_json_500(monkeypatch, caplog):
    # A NaN cannot be written as JSON: the renderer fails after the view, outside DRF's handler.
    guess = recognizer_api.digit_predict
    monkeypatch.setattr(recognizer_api, "digit_predict", lambda **kwargs: replace(guess(**kwargs), confidence=float("nan")))
    with caplog.at_level(logging.ERROR):
        response = Client(raise_request_exception=False).post(PREDICT, {"image": drawn(7)}, content_type="application/json")
    assert assert_json_error(response, 500)["message"] == "Internal server error."
    assert any("Out of range float values" in str(record.exc_info[1]) for record in caplog.records if record.exc_info)


# -- limits -----------------------------------------------------------------------------------


def test_rate_limits_do_not_trust_x_forwarded_for_by_default(db, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"feedback": "2/min", "predict": None})
    api = APIClient()
    codes = [
        api.post(FEEDBACK, {"image": drawn(7), "label": 7}, format="json", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]


def test_rate_limits_count_the_client_a_configured_proxy_names(db, monkeypatch, settings):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"feedback": "2/min", "predict": None})
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    api = APIClient()

    def post(forwarded_for: str) -> int:
        return api.post(FEEDBACK, {"image": drawn(7), "label": 7}, format="json", HTTP_X_FORWARDED_FOR=forwarded_for).status_code

    # The proxy appends the address it saw; what the client wrote before it does not count.
    assert [post(f"{i}.{i}.{i}.{i}, 10.0.0.1") for i in range(3)] == [201, 201, 429]
    assert post("10.0.0.2") == 201


# -- a locked database ------------------------------------------------------------------------


@pytest.fixture
def locked_database(transactional_db):
    """Another process's write lock on the site's database (here: a second connection)."""
    connection.close()
    if connection.vendor == "sqlite":
        holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
    else:
        import psycopg

        params = connection.get_connection_params()
        params.pop("options", None)
        holder = psycopg.connect(**{key: value for key, value in params.items() if key not in ("cursor_factory", "context")})
        holder.execute("LOCK TABLE feedback_sample IN ACCESS EXCLUSIVE MODE")
    yield
    if connection.vendor == "sqlite":
        holder.execute("ROLLBACK")
    else:
        holder.rollback()
    holder.close()


def test_a_correction_while_the_database_is_locked_answers_503_with_retry_after_quickly(locked_database):
    start = time.monotonic()
    response = APIClient().post(FEEDBACK, {"image": drawn(7), "label": 7}, format="json")
    assert time.monotonic() - start < 10  # the busy timeout is 2 s; it was 20
    assert "try again" in assert_json_error(response, 503)["message"]
    assert int(response["Retry-After"]) > 0


def test_a_transaction_that_reads_then_writes_waits_for_a_writer_that_commits_in_between(transactional_db):
    """A correction reads (the active model's version) before it writes. On SQLite in WAL mode a
    transaction that began as a reader cannot become a writer once another connection has
    committed: it failed at once ("database is locked", a 503 in the soak), whatever the busy
    timeout. Transactions now take the write lock when they begin (transaction_mode IMMEDIATE)."""
    from django.contrib.auth.models import Group

    other_done = threading.Event()

    def other_writer() -> None:
        try:
            Group.objects.create(name="written by another connection")
        finally:
            other_done.set()
            connection.close()

    with transaction.atomic():
        Group.objects.count()  # the transaction reads first
        thread = threading.Thread(target=other_writer)
        thread.start()
        other_done.wait(timeout=0.5)  # with the lock taken at BEGIN, the other writer waits for us
        Group.objects.create(name="written after reading")
    thread.join(timeout=10)
    assert sorted(Group.objects.values_list("name", flat=True)) == ["written after reading", "written by another connection"]


def test_guessing_and_health_never_wait_on_the_database(locked_database):
    api = APIClient()
    api.cookies["sessionid"] = "a-signed-in-admins-session"  # a session would be looked up in the database
    with CaptureQueriesContext(connection) as queries:
        answers = [api.post(PREDICT, {"image": drawn(7)}, format="json"), api.get(HEALTH)]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[1].json()["status"] == "ok"  # the active version was read: a write lock does not block reads
    # No session lookup; only the active model's version, read once a second in production.
    assert all(query["sql"].startswith('SELECT "recognizer_modelversion"."version"') for query in queries), queries
