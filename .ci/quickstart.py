#!/usr/bin/env python3
"""Walks the README's Quick start on this checkout, as a newcomer would, and fails loudly.

    python3 .ci/quickstart.py            # what CI runs on its clean clone, before the suite

First the quickest way to try the site, `make serve LEAN=1` (it creates .venv-web and the SQLite
database), then `make run` and `make serve` (the full install, .venv), each in the background on a
free port, in the README's order: wait until the page answers,
GET / and /admin/login/, POST a guess as strokes and a correction, find the correction in the
SQLite database under the data folder (var/), and stop the server. Then `make worker` must
start, wait for runs, and stop cleanly on Ctrl+C (SIGINT). Any failure prints the command's log and
exits 1. Standard library only: it runs before any virtual environment exists.
"""

import http.cookiejar
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = ROOT / "var" / "db.sqlite3"
# A 7 as the page sends it: strokes in canvas pixels.
SEVEN = [[[120, 80], [280, 80], [170, 320]], [[150, 200], [250, 200]]]
FIRST_START_S = 900  # `make serve LEAN=1` and `make run` on a clean clone install their requirements first
START_S = 180
STOP_S = 30


class WalkFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The walk's logs: in CI_LOG_DIR when CI names one (it removes its own folder), else in a
# temporary folder of the walk's own, removed when the walk ends.
LOGS = tempfile.TemporaryDirectory(prefix="quickstart-", dir=os.environ.get("CI_LOG_DIR") or None)


class Background:
    """A make target in its own process group, its output in a log file."""

    def __init__(self, target: str, *args: str) -> None:
        self.target = target
        self.log = open(Path(LOGS.name) / f"{target}.log", "w+b")  # noqa: SIM115 (read back by name until the walk ends)
        # The README's commands, with the environment of a newcomer's shell: no database or
        # cache URL from CI's second pass, nothing but the defaults.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITSITE_") and k != "DATABASE_URL"}
        self.process = subprocess.Popen(
            ["make", target, *args], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> int:
        """Ctrl+C, as a person stops it: SIGINT to the whole group (make and what it started)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise WalkFailed(f"`make {self.target}` did not stop within {STOP_S} s of Ctrl+C (SIGINT)") from None
        finally:
            # Children that left the group would outlive the walk; none should.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with self.opener.open(request, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def csrf_token(self) -> str:
        return next((c.value for c in self.cookies if c.name == "csrftoken"), "")


def wait_for_page(server: Background, base: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise WalkFailed(f"`make {server.target}` exited with status {server.process.returncode} before the page answered")
        try:
            with urllib.request.urlopen(base + "/", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise WalkFailed(f"the page at {base}/ did not answer within {limit_s:.0f} s of `make {server.target}`")


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise WalkFailed(what)


def walk_site(target: str, limit_s: float, *args: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Background(target, f"PORT={port}", *args)
    target = " ".join([target, *args])  # as the README writes it
    try:
        started = time.monotonic()
        wait_for_page(server, base, limit_s)
        print(f"quickstart: `make {target}` answered at {base}/ after {time.monotonic() - started:.0f} s")
        client = Client(base)
        status, page = client.request("/")
        expect(status == 200 and b"<canvas" in page, f"GET / answered {status}, not the page with its canvas")
        expect(bool(client.csrf_token()), "GET / set no csrftoken cookie")
        status, _ = client.request("/admin/login/")
        expect(status == 200, f"GET /admin/login/ answered {status}")
        status, body = client.request("/api/predict/", {"strokes": SEVEN})
        guess = json.loads(body) if status == 200 else {}
        expect(status == 200 and isinstance(guess.get("digit"), int), f"a guess as strokes answered {status}: {body[:300]!r}")
        label = (guess["digit"] + 1) % 10  # a correction: the right digit is another one
        client_id = str(uuid.uuid4())
        status, body = client.request(
            "/api/feedback/", {"strokes": SEVEN, "label": label, "client_id": client_id}, {"X-CSRFToken": client.csrf_token()}
        )
        expect(status == 201, f"a correction answered {status}: {body[:300]!r}")
        stored = json.loads(body)["id"]
        with sqlite3.connect(f"file:{DATABASE}?mode=ro", uri=True) as db:
            row = db.execute("SELECT label, guess FROM feedback_sample WHERE id = ? AND client_id = ?", (stored, client_id.replace("-", ""))).fetchone()
        expect(row == (label, guess["digit"]), f"correction {stored} is not in {DATABASE} as sent (found {row})")
        print(f"quickstart: `make {target}`: /, /admin/login/, a guess ({guess['digit']}) and a correction ({label}, stored in {DATABASE.relative_to(ROOT)}) all good")
    except BaseException:
        server.stop()
        print(server.output(), file=sys.stderr)
        raise
    server.stop()
    expect("Traceback" not in server.output(), f"`make {target}` logged an error:\n{server.output()}")


def walk_worker() -> None:
    worker = Background("worker")
    try:
        deadline = time.monotonic() + START_S
        while "waiting for runs" not in worker.output():
            expect(worker.process.poll() is None, f"`make worker` exited with status {worker.process.returncode}")
            expect(time.monotonic() < deadline, f"`make worker` did not start waiting for runs within {START_S} s")
            time.sleep(1)
        status = worker.stop()
        expect("Traceback" not in worker.output(), "`make worker` logged a traceback")
        print(f"quickstart: `make worker` started, waited for runs and stopped on Ctrl+C (make's status {status})")
    except BaseException:
        worker.stop()
        print(worker.output(), file=sys.stderr)
        raise


def main() -> int:
    try:
        walk_site("serve", FIRST_START_S, "LEAN=1")  # the README's quickest way: the lean install
        walk_site("run", FIRST_START_S)
        walk_site("serve", START_S)
        walk_worker()
    except WalkFailed as failure:
        print(f"quickstart: FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        LOGS.cleanup()
    print("quickstart: the README's Quick start works on this checkout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
