"""A lean web machine against the one before it (issue 32), in one run: for each checkout and
the venv it serves from, gunicorn started as `make serve` starts it (`gunicorn -c
gunicorn.conf.py`, a worker per core), on a fresh SQLite database, rate limits off.

    python -m bench.lean --before /work/wt/before             # after: this checkout and .venv-web
    python -m bench.lean --before DIR --before-venv V --after-venv .venv-web --seconds 60

For each it prints:
    start   seconds from starting gunicorn to its first answer (a guess as strokes)
    RSS     each worker's resident set after its first guesses, and after a load of --seconds
            (wrk, 8 connections, strokes and PNGs alternating)
    req/s   `python -m bench.http_load`'s two figures: a PNG, then strokes (8 connections, 10 s)
    install the venv's size on disk (du of the venv, links not followed)
Needs wrk (apt-get install wrk). Other processes on the machine skew every figure: the load
average is printed before and after. Results are appended to bench/results/lean.jsonl.
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.http_load import drawing_bodies, script_for, worker_rss_mb, wrk
from testing.server import ROOT, free_port


def install_mb(venv: Path) -> float:
    real = venv.resolve()
    out = subprocess.run(["du", "-sk", str(real)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def first_answer(url: str, body: bytes, process: subprocess.Popen, started: float, limit: float = 180) -> float:
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}")
        try:
            request = urllib.request.Request(f"{url}/api/predict/", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        if time.perf_counter() - started > limit:
            raise RuntimeError(f"no answer within {limit} s")
        time.sleep(0.02)


def measure(label: str, tree: Path, venv: Path, seconds: int, bodies: dict[str, bytes]) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"digitsite-lean-{label}-"))
    env = {**os.environ, "DATABASE_URL": "", "DIGITSITE_VAR_DIR": str(workdir), "DIGITSITE_CACHE_URL": "",
           "DIGITSITE_PREDICT_RATE": "none", "DIGITSITE_FEEDBACK_RATE": "none", "DIGITSITE_ACCESS_LOG": "off"}  # fmt: skip
    env.pop("DJANGO_SETTINGS_MODULE", None)
    python, gunicorn = venv / "bin" / "python", venv / "bin" / "gunicorn"
    subprocess.run([str(python), "manage.py", "migrate", "--noinput"], cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    result: dict = {"label": label, "tree": str(tree), "venv": str(venv), "install_mb": round(install_mb(venv))}
    started = time.perf_counter()
    process = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"], cwd=tree, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        result["first_answer_s"] = round(first_answer(url, bodies["strokes"], process, started), 2)
        wrk(url, script_for([("predict", bodies["strokes"]), ("predict", bodies["image"])]), 2, 2, 1)  # every worker guesses
        result["rss_first_mb"] = sorted(round(v) for v in worker_rss_mb(process.pid).values())
        for kind in ("image", "strokes"):
            run = wrk(url, script_for([("predict", bodies[kind])]), 8, 10, 2)
            result[kind] = {k: run[k] for k in ("rps", "p50_ms", "p99_ms", "errors")}
        wrk(url, script_for([("predict", bodies["strokes"]), ("predict", bodies["image"])]), 8, seconds, 2)
        result["rss_after_load_mb"] = sorted(round(v) for v in worker_rss_mb(process.pid).values())
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the commit before (git worktree add DIR d791eb3)")
    parser.add_argument("--before-venv", type=Path, help="the venv it serves from (default: its .venv, the full install)")
    parser.add_argument("--after-venv", type=Path, default=ROOT / ".venv-web", help="this checkout's venv (default .venv-web: make web-install)")
    parser.add_argument("--seconds", type=int, default=60, help="the load before the second RSS reading (default 60)")
    parser.add_argument("--pendigits", type=Path, default=Path("/work/shared/pendigits/pendigits-orig.tra"),
                        help="the pen digits, where ../shared/pendigits is not beside the checkout")  # fmt: skip
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    from bench import latency
    from testing import pendigits_data

    if not pendigits_data.DEFAULT_PATH.exists():  # a worktree beside others: ../shared is further up
        latency.load_digits = lambda: pendigits_data.load_digits(args.pendigits)
    bodies = drawing_bodies()
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    runs = [("before", args.before, args.before_venv or args.before / ".venv"), ("after", ROOT, args.after_venv)]
    results = []
    for label, tree, venv in runs:
        r = measure(label, tree.resolve(), venv.absolute(), args.seconds, bodies)
        results.append(r)
        print(
            f"{label:>6}: install {r['install_mb']:,} MB ({venv}); first answer {r['first_answer_s']:.2f} s after starting gunicorn; "
            f"worker RSS {r['rss_first_mb']} MB after the first guesses, {r['rss_after_load_mb']} MB after {args.seconds} s of load; "
            f"PNG {r['image']['rps']:.0f} req/s (p99 {r['image']['p99_ms']:.1f} ms), strokes {r['strokes']['rps']:.0f} req/s "
            f"(p99 {r['strokes']['p99_ms']:.1f} ms); errors {r['image']['errors'] + r['strokes']['errors']}"
        )
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "lean.jsonl", "a") as file:
        file.write(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": results}) + "\n")


if __name__ == "__main__":
    main()
