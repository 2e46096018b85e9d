"""Prometheus metrics: off by default, and then only for allowed addresses or the token."""

import re

import pytest

from feedback.models import Sample
from recognizer.serving import active_model
from recognizer.tests.drawings import drawn


@pytest.fixture
def metrics_on(settings):
    settings.METRICS = True
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
    settings.METRICS_TOKEN = "a-scrape-token"
    settings.MIDDLEWARE = ["digitsite.metrics.MetricsMiddleware", *settings.MIDDLEWARE]


def value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert match, f"{series} not in the metrics"
    return float(match.group(1))


def test_metrics_are_not_served_unless_switched_on(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_count_guesses_by_status_time_them_and_name_the_served_model(client, metrics_on):
    before = client.get("/metrics").content.decode()
    count = lambda text: value(text, "digitsite_predict_seconds_count") if "digitsite_predict_seconds_count" in text else 0.0  # noqa: E731
    ok = lambda text: value(text, 'digitsite_answers_total{endpoint="predict",status="200"}') if 'status="200"' in text else 0.0  # noqa: E731
    assert client.post("/api/predict/", {"image": drawn(7)}, content_type="application/json").status_code == 200
    assert client.post("/api/predict/", {"image": "data:image/png;base64,AAAA"}, content_type="application/json").status_code == 400
    after = client.get("/metrics").content.decode()
    assert count(after) == count(before) + 2
    assert ok(after) == ok(before) + 1
    assert value(after, 'digitsite_answers_total{endpoint="predict",status="400"}') >= 1
    assert value(after, f'digitsite_model_serving{{version="{active_model().version}"}}') == 1


def test_metrics_read_corrections_and_training_runs_from_the_database(client, metrics_on):
    from feedback.tests.factories import SampleFactory

    SampleFactory.create_batch(3)
    text = client.get("/metrics").content.decode()
    assert value(text, 'digitsite_corrections_stored{status="new"}') == Sample.objects.filter(status="new").count() == 3
    assert value(text, 'digitsite_training_runs{outcome="promoted"}') == 0


def test_metrics_refuse_other_addresses_without_the_token(client, metrics_on):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer a-scrape-token").status_code == 200


def test_behind_a_trusted_proxy_metrics_go_by_the_client_address_as_the_rate_limits_read_it(client, metrics_on, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = {"REMOTE_ADDR": "127.0.0.1"}  # a reverse proxy on the same machine
    assert client.get("/metrics", **proxy, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 404
    # A client that sends its own X-Forwarded-For: 127.0.0.1 gets its real address appended by the proxy.
    assert client.get("/metrics", **proxy, HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.9").status_code == 404
    assert client.get("/metrics", **proxy, HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200
    assert client.get("/metrics", **proxy, HTTP_X_FORWARDED_FOR="203.0.113.9", HTTP_AUTHORIZATION="Bearer a-scrape-token").status_code == 200


def test_without_trusted_proxies_a_forwarded_header_buys_no_access_to_metrics(client, metrics_on):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 200
