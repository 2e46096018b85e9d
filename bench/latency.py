"""Predict latency and throughput, on real drawings: pen-stroke digits sent as the page sends
them (strokes, points to a tenth of a pixel) or rendered as 400x400 canvas PNGs (`--input image`).

1. the service alone (decode or draw, preprocess, model), in this process;
2. POST /api/predict/ over HTTP against `manage.py runserver` on 127.0.0.1, one client, then
   several at once, for requests per second.

    python -m bench.latency [--input strokes|image] [--requests 400] [--concurrency 4]
"""

import argparse
import http.client
import json
import os
import statistics
import threading
import time
from urllib.parse import urlparse

import numpy as np

from testing.pendigits_data import layout, load_digits, render, stratified_subset


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    return f"p50 {at(0.5):.1f} ms, p90 {at(0.9):.1f} ms, p99 {at(0.99):.1f} ms, mean {statistics.fmean(ordered):.1f} ms"


def drawings(count: int, kind: str) -> list[dict]:
    """Request bodies' contents: {"strokes": [...]} as the page rounds them, or {"image": PNG bytes}."""
    from recognizer.preprocessing import to_png

    digits = stratified_subset(load_digits(), max(1, count // 300 + 1), seed=1)[:count]
    if kind == "strokes":
        return [{"strokes": [stroke.tolist() for stroke in layout(d, seed=1)]} for d in digits]
    return [{"image": to_png(render(layout(d, seed=1)))} for d in digits]


def service_latency(drawn: list[dict]) -> list[float]:
    """digit_predict on each drawing, from what the API's field would hand it."""
    from recognizer.services import digit_predict

    arguments = [{key: [np.array(s) for s in value] if key == "strokes" else value for key, value in d.items()} for d in drawn]
    digit_predict(**arguments[0])  # load the model first
    times = []
    for drawing in arguments:
        started = time.perf_counter()
        digit_predict(**drawing)
        times.append((time.perf_counter() - started) * 1000)
    return times


def http_latency(url: str, bodies: list[bytes], concurrency: int) -> tuple[list[float], float]:
    """Each of `concurrency` threads posts its share of `bodies` on its own keep-alive connection."""
    target = urlparse(url)
    times: list[float] = []
    lock = threading.Lock()

    def client(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        for body in share:
            started = time.perf_counter()
            connection.request("POST", "/api/predict/", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"predict answered {response.status}")
            with lock:
                times.append((time.perf_counter() - started) * 1000)
        connection.close()

    threads = [threading.Thread(target=client, args=(bodies[i::concurrency],)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, len(bodies) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="drawings to send per measurement (default: 400)")
    parser.add_argument("--concurrency", type=int, default=4, help="clients at once for the throughput run (default: 4)")
    parser.add_argument("--input", choices=["strokes", "image"], default="strokes", help="what is sent (default: %(default)s, as the page does)")
    args = parser.parse_args()

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    import torch

    from recognizer.preprocessing import to_data_url
    from recognizer.serving import active_model

    drawn = drawings(args.requests, args.input)
    bodies = [json.dumps({k: to_data_url(v) if k == "image" else v for k, v in d.items()}).encode() for d in drawn]
    print(f"{len(drawn)} drawings as {args.input}, request bodies mean {statistics.fmean(map(len, bodies)) / 1000:.1f} kB; "
          f"model {active_model().version}; torch threads {torch.get_num_threads()}; {os.cpu_count()} CPUs")
    print(f"service (read the drawing + preprocess + model): {percentiles(service_latency(drawn))}")

    from testing.server import running_server

    with running_server() as url:
        http_latency(url, bodies[:20], 1)  # warm up: the server loads the model on first use
        times, _ = http_latency(url, bodies, 1)
        print(f"HTTP, 1 client (runserver): {percentiles(times)}")
        times, rate = http_latency(url, bodies, args.concurrency)
        print(f"HTTP, {args.concurrency} clients (runserver): {rate:.0f} requests/s, {percentiles(times)}")


if __name__ == "__main__":
    main()
