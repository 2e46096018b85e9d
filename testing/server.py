"""Start the site on 127.0.0.1 for a benchmark, and stop it afterwards."""

import ctypes
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def drop_root_file_powers() -> None:
    """In a child before exec: file modes apply to it even as root.

    Root reads any file whatever its mode; without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in
    its bounding set, the program it executes runs without those powers, so a folder made
    unreadable is unreadable to it, as to the web server's own user in production."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(*args: str, env: dict[str, str] | None = None, quiet: bool = False, root: Path = ROOT) -> None:
    """Run a manage.py command with the benchmark's environment; fail loudly if it fails."""
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env={**os.environ, **(env or {})},
        check=True,
        stdout=subprocess.DEVNULL if quiet else None,
    )


@contextmanager
def running_server(env: dict[str, str] | None = None, port: int | None = None, preexec_fn=None):
    """Yield the base URL of a fresh `runserver` (throttling off) using `env` on top of ours;
    `preexec_fn` runs in the server's process before it starts (bench/probe.py drops root's
    file powers there)."""
    port = port or free_port()
    env = {**os.environ, "DIGITSITE_PREDICT_RATE": "none", "DIGITSITE_FEEDBACK_RATE": "none", **(env or {})}
    manage("migrate", "--noinput", env=env, quiet=True)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=preexec_fn,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, timeout=60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/health/", timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {url}") from None
            time.sleep(0.2)


@contextmanager
def running_gunicorn(env: dict[str, str] | None = None, port: int | None = None, args: tuple[str, ...] = (), log=subprocess.DEVNULL, root: Path = ROOT):
    """Yield the base URL of gunicorn started as `make serve` starts it (`gunicorn -c gunicorn.conf.py`,
    after `migrate`), with `env` on top of ours; `args` are more gunicorn flags (e.g. -w 1);
    `root`: another checkout of the site to serve (a baseline measured in the same sitting)."""
    port = port or free_port()
    env = {**os.environ, **(env or {})}
    manage("migrate", "--noinput", env=env, quiet=True, root=root)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", *args],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT if log is not subprocess.DEVNULL else subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)
