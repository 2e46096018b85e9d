"""Predict latency and throughput, on real drawings (pen-stroke digits rendered as canvas PNGs).

1. the service alone (decode, preprocess, model), in this process;
2. POST /api/predict/ over HTTP against `manage.py runserver` on 127.0.0.1, one client, then
   several at once, for requests per second.

    python -m bench.latency [--requests 400] [--concurrency 4]
"""

import argparse
import http.client
import json
import os
import statistics
import threading
import time
from urllib.parse import urlparse

from bench.pendigits_data import layout, load_digits, render, stratified_subset


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    return f"p50 {at(0.5):.1f} ms, p90 {at(0.9):.1f} ms, p99 {at(0.99):.1f} ms, mean {statistics.fmean(ordered):.1f} ms"


def drawings(count: int) -> list[bytes]:
    from recognizer.preprocessing import to_png

    digits = stratified_subset(load_digits(), max(1, count // 300 + 1), seed=1)[:count]
    return [to_png(render(layout(d, seed=1))) for d in digits]


def service_latency(images: list[bytes]) -> list[float]:
    from recognizer.services import digit_predict

    digit_predict(image=images[0])  # load the model first
    times = []
    for image in images:
        started = time.perf_counter()
        digit_predict(image=image)
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
    args = parser.parse_args()

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()
    import torch

    from recognizer.preprocessing import to_data_url
    from recognizer.registry import active_model

    images = drawings(args.requests)
    print(f"{len(images)} drawings, 400x400 PNG, mean {statistics.fmean(map(len, images)) / 1000:.1f} kB; "
          f"model {active_model().version}; torch threads {torch.get_num_threads()}; {os.cpu_count()} CPUs")
    print(f"service (decode + preprocess + model): {percentiles(service_latency(images))}")

    from bench.server import running_server

    bodies = [json.dumps({"image": to_data_url(image)}).encode() for image in images]
    with running_server() as url:
        http_latency(url, bodies[:20], 1)  # warm up: the server loads the model on first use
        times, _ = http_latency(url, bodies, 1)
        print(f"HTTP, 1 client (runserver): {percentiles(times)}")
        times, rate = http_latency(url, bodies, args.concurrency)
        print(f"HTTP, {args.concurrency} clients (runserver): {rate:.0f} requests/s, {percentiles(times)}")


if __name__ == "__main__":
    main()
