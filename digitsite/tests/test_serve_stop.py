"""`make serve` stopped with Ctrl+C: a request in flight is answered first, and nothing breaks."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from testing.server import ROOT, free_port, manage, wait_until_up

BODY = b'{"strokes": [[[200, 60], [200, 340]]]}'


def test_ctrl_c_on_make_serve_answers_the_request_in_flight_then_stops_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DIGITSITE_CACHE_URL")}
    env.update(DIGITSITE_DB_PATH=str(tmp_path / "db.sqlite3"), DIGITSITE_MODEL_DIR=str(tmp_path / "models"))
    manage("migrate", "--noinput", env=env, quiet=True)
    port, log = free_port(), tmp_path / "gunicorn.log"
    with open(log, "w") as out:
        # Its own process group, as a terminal's: Ctrl+C signals the master and every worker at once.
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "-w", "1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            head = f"POST /api/predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
            client.sendall(head.encode() + BODY[:10])
            time.sleep(0.5)  # the worker is inside the request, reading its body
            os.killpg(server.pid, signal.SIGINT)
            time.sleep(0.5)
            client.sendall(BODY[10:])
            # The answer may come in several pieces (headers, then the body): read until the
            # server closes the connection, as it does when it stops.
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b'"digit":1' in answer.replace(b" ", b"")
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    output = log.read_text()
    assert "Handling signal: int" in output and "Traceback" not in output, output[-2000:]
