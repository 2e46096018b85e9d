"""Peak memory one request costs: hostile images posted to /api/predict/ in this process.

    python -m bench.memory [--repeat 3]

Each input goes through the whole Django stack (JSON parsing, base64, decoding, the model).
Before each request the process's peak RSS is reset (Linux's /proc/self/clear_refs), so the
figure is the peak during that request above the resident memory just before it. The target
for any accepted input is at most 50 MB.
"""

import argparse
import gc
import io
import json
import os
import subprocess
import sys
import time

import numpy as np

TARGET_MB = 50


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current RSS


def png_bytes(array: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


def jpeg_bytes(array: np.ndarray, *, progressive: bool = False) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=50, progressive=progressive)
    return buffer.getvalue()


def hostile_inputs() -> dict[str, bytes]:
    """Name -> image file bytes: the inputs of issue 11 and their neighbours."""
    from recognizer.tests.drawings import draw, png

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (4096, 4096), dtype=np.uint8)
    noise[::2, ::2] = 255  # a noisy photo of a page, still under the 1.5 MB image limit as JPEG
    import cv2

    big_seven = cv2.resize(draw(7), (2048, 2048), interpolation=cv2.INTER_LINEAR)  # RGBA, ink filling it
    gray_seven = 255 - cv2.resize(big_seven[..., 3], (4096, 4096), interpolation=cv2.INTER_LINEAR)
    return {
        "canvas drawing 400x400 RGBA (what the page sends)": png(draw(7)),
        "PNG 8-bit RGBA 2048x2048, a 7 filling it": png(big_seven),
        "PNG 8-bit gray 4096x4096, a 7 filling it": png(gray_seven),
        "JPEG 4096x4096 gray baseline, a 7 filling it": jpeg_bytes(gray_seven),
        "PNG 16-bit RGBA 4096x4096, all zero": png_bytes(np.zeros((4096, 4096, 4), np.uint16)),
        "PNG 8-bit RGBA 4096x4096, all zero": png_bytes(np.zeros((4096, 4096, 4), np.uint8)),
        "PNG 8-bit gray 4096x4096, all white": png_bytes(np.full((4096, 4096), 255, np.uint8)),
        "PNG 16-bit RGBA 1448x1448, all zero": png_bytes(np.zeros((1448, 1448, 4), np.uint16)),
        "PNG 8-bit RGBA 2048x2048, all zero": png_bytes(np.zeros((2048, 2048, 4), np.uint8)),
        "PNG 8-bit gray 2048x2048, all white": png_bytes(np.full((2048, 2048), 255, np.uint8)),
        "JPEG 4096x4096 gray, baseline": jpeg_bytes(np.full((4096, 4096), 255, np.uint8)),
        "JPEG 4096x4096 colour, progressive": jpeg_bytes(np.full((4096, 4096, 3), 255, np.uint8), progressive=True),
        "JPEG 4096x4096 gray noise, progressive": jpeg_bytes(noise, progressive=True),
        "PNG drawing + 1.45 MB after IEND": png(draw(7)) + b"\0" * 1_450_000,
    }


def _bodies() -> dict[str, str]:
    from recognizer.tests.drawings import data_url

    bodies = {
        name: json.dumps({"image": data_url(data, "image/jpeg" if name.startswith("JPEG") else "image/png")})
        for name, data in hostile_inputs().items()
    }
    bodies["JSON nested 100,000 deep"] = "[" * 100_000 + "]" * 100_000
    return bodies


def measure(name: str, repeat: int) -> dict:
    """In this (fresh) process: the peak above the RSS before each request, worst of `repeat`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    os.environ["DIGITSITE_PREDICT_RATE"] = "none"
    import django

    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    client = Client()
    bodies = _bodies()
    body = bodies[name]
    # Warm up: the model loaded, the first request's imports and buffers made.
    for _ in range(2):
        client.post("/api/predict/", bodies["canvas drawing 400x400 RGBA (what the page sends)"], content_type="application/json")
    idle = _status("VmRSS")
    peaks, codes, times = [], set(), []
    for _ in range(repeat):
        gc.collect()
        before = _status("VmRSS")
        _reset_peak()
        start = time.perf_counter()
        response = client.post("/api/predict/", body, content_type="application/json")
        times.append(time.perf_counter() - start)
        peaks.append((_status("VmHWM") - before) / 2**20)
        codes.add(response.status_code)
        del response
    gc.collect()
    return {
        "name": name,
        "body_bytes": len(body),
        "codes": sorted(codes),
        "peak_mb": max(peaks),
        "time_ms": max(times) * 1000,
        "kept_mb": (_status("VmRSS") - idle) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="requests per input; the largest peak counts (default: 3)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process measuring one input
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.repeat)))
        return

    # One fresh process per input: a process that has just freed a big buffer keeps some of it
    # (glibc raises its mmap threshold), and the next request would reuse it unseen.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    names = list(_bodies())
    print(f"peak RSS during one POST /api/predict/ above the RSS just before it, worst of {args.repeat}, one process per input")
    print(f"{'input':52} {'body':>9} {'answer':>7} {'peak':>9} {'kept':>8} {'time':>7}")
    worst = 0.0
    for name in names:
        child = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--one", name, "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(child.stdout.strip().splitlines()[-1])
        code = "/".join(str(c) for c in row["codes"])
        if 200 in row["codes"]:
            worst = max(worst, row["peak_mb"])
        print(
            f"{name:52} {row['body_bytes'] / 1000:8.0f}k {code:>7} {row['peak_mb']:7.1f}MB "
            f"{row['kept_mb']:+6.1f}MB {row['time_ms']:5.0f}ms"
        )
    print(f"worst accepted input: +{worst:.1f} MB (target: at most {TARGET_MB} MB)")


if __name__ == "__main__":
    main()
