"""Prometheus metrics (prometheus-client), on only with DIGITSITE_METRICS=on, at /metrics, for
the addresses in DIGITSITE_METRICS_ALLOWED_IPS (default 127.0.0.1) or a client sending
`Authorization: Bearer <DIGITSITE_METRICS_TOKEN>`; anyone else gets a 404. The address is the
client's as the rate limits read it (digitsite.clients: after DIGITSITE_NUM_PROXIES trusted
proxies), so behind a proxy on the same machine the proxy's own 127.0.0.1 lets no one in.

Per process: predict latency (a histogram), answers by endpoint and status, the model version
each process serves. From the database at scrape time, so the same from every machine: the
corrections stored, and training runs by outcome (training runs in its own process, often on
another machine, so counting there would need a scrape of that process).

Under gunicorn, set PROMETHEUS_MULTIPROC_DIR (an empty folder, local to the machine):
prometheus-client's multiprocess mode then has each worker write its figures to files there, and
whichever worker answers /metrics adds them up for the whole machine (histograms and counters
summed; the serving version one series per worker, labelled by pid). gunicorn.conf.py empties the
folder when the master starts and drops a dead worker's live figures. Without it each process
answers for itself.
"""

import hmac
import os
import time

from django.conf import settings
from django.http import Http404, HttpResponse

from digitsite.clients import client_address

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # In multiprocess mode each metric writes to a file there from the moment it is made, in
    # every process that imports this (manage.py commands too), not only under gunicorn.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

ENDPOINTS = {"/api/predict/": "predict", "/api/feedback/": "feedback", "/api/health/": "health"}

PREDICT_SECONDS = Histogram(
    "digitsite_predict_seconds", "Time to answer POST /api/predict/, in this process",
    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)  # fmt: skip
ANSWERS = Counter("digitsite_answers", "Answers by endpoint and HTTP status", ["endpoint", "status"])
SERVING = Gauge("digitsite_model_serving", "1 for the model version this process serves", ["version"], multiprocess_mode="liveall")


class MetricsMiddleware:
    """Times and counts the API's answers; notes which model version this process serves."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.serving: str | None = None

    def __call__(self, request):
        endpoint = ENDPOINTS.get(request.path_info)
        if endpoint is None:
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        if endpoint == "predict":
            PREDICT_SECONDS.observe(time.perf_counter() - started)
            if response.status_code == 200 and (version := getattr(response, "data", {}).get("model")) != self.serving:
                if self.serving is not None:
                    SERVING.remove(self.serving)
                SERVING.labels(version=version).set(1)
                self.serving = version
        ANSWERS.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        return response


class DatabaseCollector:
    """Figures the database holds for the whole site, read when scraped."""

    def collect(self):
        from django.db import DatabaseError
        from django.db.models import Count

        from feedback.models import Sample
        from training.models import TrainingRun

        up = GaugeMetricFamily("digitsite_database_up", "1 when the database answered this scrape")
        try:
            samples = list(Sample.objects.values("status").annotate(n=Count("id")))
            counts = dict(TrainingRun.objects.values_list("status").annotate(n=Count("id")))
        except DatabaseError:
            up.add_metric([], 0)
            yield up  # the process's own figures are still worth a scrape
            return
        up.add_metric([], 1)
        yield up
        stored = GaugeMetricFamily("digitsite_corrections_stored", "Drawings stored through /api/feedback/, by status", labels=["status"])
        for row in samples:
            stored.add_metric([row["status"]], row["n"])
        yield stored
        runs = GaugeMetricFamily("digitsite_training_runs", "Training runs by outcome (status)", labels=["outcome"])
        for status in TrainingRun.Status.values:
            runs.add_metric([status], counts.get(status, 0))
        yield runs


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    return client_address(request) in settings.METRICS_ALLOWED_IPS


def metrics_view(request):
    if not settings.METRICS or not _allowed(request):
        raise Http404
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry_with_db = CollectorRegistry()
    registry_with_db.register(DatabaseCollector())
    body = generate_latest(registry) + generate_latest(registry_with_db)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
