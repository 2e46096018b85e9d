#!/usr/bin/env python3
"""A lean web machine (issue 32): gunicorn from a venv made from requirements/web.txt alone,
against CI's PostgreSQL database, must serve everything a web machine serves.

    python3 .ci/lean.py WEB_VENV [PORT]   # .ci/run: after the suite, with the database's env set

Setup uses the full install (.venv): a short `train_digits` run (a finished run with its
pictures, and a published version with its serving form) and an admin login. Then, from
WEB_VENV only: torch cannot be imported there; gunicorn starts; a guess as strokes and as an
image, a correction, /api/health/ (int8), the admin's sample list, the run's page with its
pictures, and "Retrain now", which only queues. Standard library only.
"""

import base64
import json
import os
import re
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quickstart import ROOT, SEVEN, Client, WalkFailed, expect, free_port  # noqa: E402

FULL = ROOT / ".venv" / "bin" / "python"


def png_of_a_seven() -> bytes:
    """A 64x64 greyscale PNG: a 7 in black on white, made with zlib alone."""
    pixels = [[255] * 64 for _ in range(64)]
    for x in range(12, 52):
        for y in (12, 13, 14, 15):
            pixels[y][x] = 0
    for step in range(40):
        x, y = 50 - step * 0.6, 14 + step * 1.2
        for dx in range(-2, 3):
            pixels[int(y)][int(x) + dx] = 0
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def full(*args: str, env: dict) -> str:
    done = subprocess.run([str(FULL), "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    expect(done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return done.stdout


def admin_login(client: Client, password: str) -> None:
    client.request("/admin/login/")
    form = urllib.parse.urlencode({"username": "ci-admin", "password": password, "csrfmiddlewaretoken": client.csrf_token(), "next": "/admin/"})
    request = urllib.request.Request(client.base + "/admin/login/", data=form.encode(), headers={"Referer": client.base + "/admin/login/"})
    with client.opener.open(request, timeout=30) as answer:
        expect(answer.status == 200 and "/admin/login/" not in answer.url, f"the admin login did not succeed (at {answer.url})")


def post_form(client: Client, path: str, fields: dict) -> tuple[int, str, str]:
    data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": client.csrf_token()}).encode()
    request = urllib.request.Request(client.base + path, data=data, headers={"Referer": client.base + path})
    with client.opener.open(request, timeout=30) as answer:
        return answer.status, answer.url, answer.read().decode()


def main(web_venv: Path, port: int | None = None) -> int:
    env = {**os.environ, "DIGITSITE_PREDICT_RATE": "none", "DIGITSITE_FEEDBACK_RATE": "none"}
    web_python = web_venv / "bin" / "python"
    lean = subprocess.run([str(web_python), "-c", "import torch"], capture_output=True)
    expect(lean.returncode != 0, f"torch can be imported in {web_venv}: the lean install is not lean")
    password = secrets.token_urlsafe(16)
    subprocess.run(["make", "data"], cwd=ROOT, check=True)  # MNIST from ../shared when there is a copy
    full("train_digits", "--limit", "500", "--epochs", "1", "--val-size", "500", "--test-limit", "1000", "--no-progress", env=env)
    full("shell", "-c", f"from django.contrib.auth.models import User; User.objects.filter(username='ci-admin').delete(); "
         f"User.objects.create_superuser('ci-admin', 'ci@example.com', '{password}')", env=env)  # fmt: skip
    port = port or free_port()
    # In CI's own folder when it names one (CI removes it), else deleted when the walk ends.
    log = tempfile.NamedTemporaryFile(prefix="lean-gunicorn-", suffix=".log", dir=os.environ.get("CI_LOG_DIR") or None)  # noqa: SIM115
    server = subprocess.Popen(
        [str(web_venv / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env={**env, "DIGITSITE_WORKERS": "2"}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = Client(f"http://127.0.0.1:{port}")
    try:
        started = time.monotonic()
        while True:
            expect(server.poll() is None, "gunicorn from the lean venv exited")
            status, body = client.request("/api/health/") if _up(port) else (0, b"")
            if status:
                break
            expect(time.monotonic() - started < 60, "gunicorn from the lean venv did not answer within 60 s")
            time.sleep(0.5)
        health = json.loads(body)
        expect(status == 200 and health["status"] == "ok" and health["model"]["precision"] == "int8", f"health: {status} {health}")
        status, page = client.request("/")
        expect(status == 200 and b"<canvas" in page, f"GET / answered {status}")
        status, body = client.request("/api/predict/", {"strokes": SEVEN})
        expect(status == 200 and b'"digit":' in body, f"a guess as strokes answered {status}: {body[:300]!r}")
        image = "data:image/png;base64," + base64.b64encode(png_of_a_seven()).decode()
        status, body = client.request("/api/predict/", {"image": image})
        expect(status == 200 and b'"digit":7' in body, f"a guess as an image answered {status}: {body[:300]!r}")
        status, body = client.request(
            "/api/feedback/", {"strokes": SEVEN, "label": 1, "client_id": str(uuid.uuid4())}, {"X-CSRFToken": client.csrf_token()}
        )
        expect(status == 201, f"a correction answered {status}: {body[:300]!r}")
        admin_login(client, password)
        status, page = client.request("/admin/feedback/sample/")
        expect(status == 200 and b"result_list" in page, f"the admin's sample list answered {status}")
        status, page = client.request("/admin/training/trainingrun/")
        runs = re.findall(rb'/admin/training/trainingrun/(\d+)/change/', page)
        expect(status == 200 and bool(runs), f"the runs list answered {status} with no run")
        status, page = client.request(f"/admin/training/trainingrun/{runs[0].decode()}/change/")
        pictures = re.findall(rb'<img src="data:image/png;base64,', page)
        expect(status == 200 and len(pictures) >= 2, f"the run page answered {status} with {len(pictures)} pictures")
        status, url, page = post_form(client, "/admin/training/trainingrun/retrain/", {"epochs": "1"})
        expect(status == 200 and "/change/" in url and "Cancel this run" in page, f"Retrain now answered {status} at {url}: no queued run")
        print(f"lean: gunicorn from {web_venv} (no torch): health int8, guesses, a correction, the admin's samples, a run page and Retrain now all good")
    except WalkFailed:
        server.terminate()
        server.wait(30)
        print(Path(log.name).read_text(errors="replace")[-5000:], file=sys.stderr)
        raise
    server.terminate()
    server.wait(30)
    output = Path(log.name).read_text(errors="replace")
    expect("Traceback" not in output, f"gunicorn from the lean venv logged an error:\n{output[-5000:]}")
    return 0


def _up(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    try:
        sys.exit(main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None))
    except WalkFailed as failure:
        print(f"lean: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
