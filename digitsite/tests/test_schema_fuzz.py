"""Schemathesis against the API's own OpenAPI schema: every generated request, valid or not,
gets an answer below 500, and every error is the API's JSON."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.throttling import ScopedRateThrottle

from digitsite.wsgi import application

# Django's CSRF check takes any 32-character alphanumeric secret as cookie and header alike:
# with both, the cases reach the feedback endpoint's own validation, not only its 403.
TOKEN = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"

# Loaded when the tests are collected: the schema view needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def wsgi_in_test_transaction(db):
    """The WSGI app called directly closes the database connection after each request, as it
    should in production; Django's test client keeps it open for the test's transaction."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case, wsgi_in_test_transaction, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"predict": None, "feedback": None})
    response = case.call(headers={"X-CSRFToken": TOKEN}, cookies={"csrftoken": TOKEN})
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/json"), response.headers
        assert response.json()["message"]


def test_each_endpoint_describes_its_own_body():
    # Nested serializers all called InputSerializer once shared one component, "Input".
    operations = {path: schema[path]["POST"] for path in ("/api/predict/", "/api/feedback/")}
    bodies = {path: op.definition.raw["requestBody"]["content"]["application/json"]["schema"]["$ref"] for path, op in operations.items()}
    assert bodies == {"/api/predict/": "#/components/schemas/PredictInput", "/api/feedback/": "#/components/schemas/FeedbackInput"}
    components = schema.raw_schema["components"]["schemas"]
    assert "label" not in components["PredictInput"]["properties"]
    assert "label" in components["FeedbackInput"]["required"]
