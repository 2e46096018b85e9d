"""Predict over HTTP against gunicorn started as `make serve` starts it, driven by wrk (a bounded C
client: Debian's `apt-get install wrk`), on 127.0.0.1.

    python -m bench.http_load                 # 8 connections, 10 s: a 400x400 drawing, then its strokes
    python -m bench.http_load --soak 300      # 16 connections, 300 s: 80% predict, 10% feedback, 10% health
    python -m bench.http_load --memory        # strokes from a stranger; a misread drawing from a stranger, a session, one with 50
                                              # corrections, one with 50 and 100 drawings that stood sending one more with each guess
    python -m bench.http_load --memory --baseline ../main-checkout --rounds 8
                                              # the same, in short bursts taken in turn with the usual strokes
                                              # against another checkout's gunicorn: before/after in one sitting

Each run starts `gunicorn -c gunicorn.conf.py` (after `migrate`) on a fresh SQLite database in a
temporary folder, with the rate limits off (DIGITSITE_PREDICT_RATE / FEEDBACK_RATE "none"), and
prints requests/s, p50/p99 and errors (anything but 200/201, and socket errors); the soak also
prints stored corrections against 201 answers and each worker's memory (RSS) after warming up and
at the end. Results are appended to bench/results/http-load.jsonl.
"""

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from testing.server import ROOT, running_gunicorn

CSRF = "loadloadloadloadloadloadloadload"  # any 32 letters and digits: cookie and header agree

# wrk counts the answers by status itself: "Non-2xx or 3xx responses" misses a 201 that should
# have been a 200, so each thread counts statuses and done() prints them.
LUA = """
local bodies = {%(bodies)s}
local kinds = {%(kinds)s}
local counter = 0
statuses = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function request()
  counter = counter + 1
  local i = (counter %% #kinds) + 1
  local kind = kinds[i]
  if kind == "health" then
    return wrk.format("GET", "/api/health/", {}, nil)
  end
  local headers = {["Content-Type"] = "application/json"}
  local path = "/api/predict/"
  if "%(cookie)s" ~= "" then headers["Cookie"] = "%(cookie)s" end
  if kind == "feedback" then
    path = "/api/feedback/"
    headers["Cookie"] = "csrftoken=%(csrf)s"
    headers["X-CSRFToken"] = "%(csrf)s"
  end
  return wrk.format("POST", path, headers, bodies[i])
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local all = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do all[status] = (all[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(all) do table.insert(parts, string.format('"%%d": %%d', status, n)) end
  io.write("STATUSES {" .. table.concat(parts, ", ") .. "}\\n")
  io.write(string.format("LATENCY p50 %%.3f p90 %%.3f p99 %%.3f max %%.3f\\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("TOTAL %%d in %%.3f s, socket errors %%d %%d %%d %%d\\n", summary.requests, summary.duration / 1e6,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def drawing_bodies() -> dict[str, bytes]:
    """One real drawing (a pen digit from testing.pendigits_data, as the page would send it): as
    a 400x400 PNG data URL, and as strokes."""
    from bench.latency import drawings
    from recognizer.preprocessing import to_data_url

    image = drawings(1, "image")[0]["image"]
    strokes = drawings(1, "strokes")[0]["strokes"]
    return {
        "image": json.dumps({"image": to_data_url(image)}).encode(),
        "strokes": json.dumps({"strokes": strokes}).encode(),
        "feedback": json.dumps({"strokes": strokes, "label": 7}).encode(),
    }


def wrk(url: str, script: str, connections: int, seconds: int, threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s", "-s", file.name, url],
            capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed: {out.stdout}{out.stderr}")
        out = out.stdout
    finally:
        os.unlink(file.name)
    statuses = {int(k): v for k, v in json.loads(re.search(r"STATUSES (\{.*\})", out).group(1)).items()}
    p50, p90, p99, worst = (float(x) for x in re.search(r"LATENCY p50 (\S+) p90 (\S+) p99 (\S+) max (\S+)", out).groups())
    total, duration, *socket_errors = re.search(r"TOTAL (\d+) in (\S+) s, socket errors (\d+) (\d+) (\d+) (\d+)", out).groups()
    total, duration = int(total), float(duration)
    bad = sum(n for status, n in statuses.items() if status not in (200, 201)) + sum(map(int, socket_errors))
    return {"requests": total, "rps": total / duration, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": worst,
            "statuses": statuses, "errors": bad}  # fmt: skip


def script_for(bodies: list[tuple[str, bytes]], cookie: str = "") -> str:
    """`cookie`: sent with every predict (a browser's session), none by default (a stranger)."""
    return LUA % {
        "bodies": ", ".join(lua_string(body.decode()) if body else "nil" for _, body in bodies),
        "kinds": ", ".join(f'"{kind}"' for kind, _ in bodies),
        "csrf": CSRF,
        "cookie": cookie,
    }


def misread_drawing() -> tuple[list, int]:
    """A real pen digit (the pen guard set shipped with the code) that the net misreads but finds
    its true digit plausible: its strokes and that digit. A correction of it is then compared
    with every guess of it, and answers it (the memory's dearest case: every remembered row is
    read, its features compared, the answer blended)."""
    from recognizer.memory import PLAUSIBLE
    from recognizer.pen_digits import pen_digits_strokes
    from recognizer.services import digit_predict

    drawings, labels = pen_digits_strokes()
    for strokes, label in zip(drawings, labels):
        answer = digit_predict(strokes=strokes)
        if answer.digit is not None and answer.digit != label and answer.probabilities[label] >= PLAUSIBLE:
            return [stroke.tolist() for stroke in strokes], int(label)
    raise RuntimeError("no such drawing in the pen guard set")


def session_with_corrections(url: str, *, corrections: int, strokes: list, label: int, stood: int = 0) -> str:
    """A browser's cookies (session, CSRF and the memory hint) after `memory_teach`'s steps."""
    import http.cookiejar
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(url + "/", timeout=30).read()

    def post(path: str, body: dict) -> dict:
        token = next(c.value for c in jar if c.name == "csrftoken")
        headers = {"Content-Type": "application/json", "X-CSRFToken": token, "Referer": url + "/"}
        with opener.open(urllib.request.Request(url + path, json.dumps(body).encode(), headers, method="POST"), timeout=30) as answer:
            return json.loads(answer.read())

    memory_teach(post, corrections=corrections, strokes=strokes, label=label, stood=stood)
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def memory_teach(post, *, corrections: int, strokes: list, label: int, stood: int = 0) -> None:
    """What a browser sends, through `post(path, body) -> answer`, to have a memory: `corrections`
    corrections of `strokes` moved about the pad, each labelled `label`, then `stood` drawings
    that stood (the same, moved elsewhere, as answered). With no corrections, a confirmation
    instead: a session, and nothing remembered. (bench.memory_cost sends them in process.)"""
    if corrections == 0:
        answer = post("/api/predict/", {"strokes": strokes})
        post("/api/feedback/", {"strokes": strokes, "label": answer["digit"]})
    for i in range(corrections):
        moved = [[[x + (i % 7) * 9 - 27, y + (i // 7) * 9 - 27] for x, y in stroke] for stroke in strokes]
        post("/api/feedback/", {"strokes": moved, "label": label})
    answers = [post("/api/predict/", {"strokes": [[[x + i % 10 * 7 - 35, y - i // 10 * 7 + 35] for x, y in stroke] for stroke in strokes]}) for i in range(stood)]
    if answers:
        post("/api/predict/", {"strokes": strokes, "stood": [{"image": a["input_image"], "digit": a["digit"]} for a in answers]})


def predicts(body: bytes | list[bytes]) -> list[tuple[str, bytes]]:
    """wrk's requests: one body, or several sent in turn."""
    return [("predict", one) for one in (body if isinstance(body, list) else [body])]


def with_stood(strokes: list, count: int) -> bytes:
    """A guess of `strokes` as the page sends it from a browser with a memory: with `count`
    drawings before it, which stood (here the same drawing, encoded as the API encodes input_image)."""
    import numpy as np

    from recognizer.preprocessing import to_data_url, to_png
    from recognizer.services import digit_predict

    answer = digit_predict(strokes=[np.asarray(stroke, dtype=np.float64) for stroke in strokes])
    image = to_data_url(to_png(answer.model_input))
    return json.dumps({"strokes": strokes, "stood": [{"image": image, "digit": answer.digit}] * count}).encode()


def stood_cases(url: str, strokes: list, label: int, misread: bytes) -> dict[str, tuple]:
    """A browser with 50 corrections and 100 drawings that stood, guessing the misread drawing:
    with one more that stood in every guess (the worst case: every guess a write), and as the
    page sends them (ten at a time, with a guess: about one guess in thirty, as the page asks
    every 500 ms while the pen moves and a digit takes about a second and a half). (url, body
    or bodies, cookies)."""
    return {
        "session, 50 corrections and 100 that stood, a misread drawing": (
            url, misread, session_with_corrections(url, corrections=50, strokes=strokes, label=label, stood=100),
        ),
        "session, 50 corrections and 100 that stood, each guess with one more that stood": (
            url, with_stood(strokes, 1), session_with_corrections(url, corrections=50, strokes=strokes, label=label, stood=100),
        ),
        "session, 50 corrections and 100 that stood, one guess in 30 with ten more": (
            url, [with_stood(strokes, 10)] + [misread] * 29, session_with_corrections(url, corrections=50, strokes=strokes, label=label, stood=100),
        ),
    }  # fmt: skip


def worker_pids(master_pid: int) -> list[int]:
    """The gunicorn master's workers (its child processes), from /proc."""
    return [int(pid) for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()]


def workers_cpu_seconds(master_pid: int) -> float:
    """CPU seconds (user and system) the gunicorn master's workers have used so far."""
    ticks = 0
    for pid in worker_pids(master_pid):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: the stat file's 14th and 15th fields
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_against_baseline(url: str, pid: int, args, bodies: dict[str, bytes], env: dict[str, str]) -> dict:
    """The memory's cases and the baseline checkout's strokes, in turn (in another order each
    round), `args.rounds` bursts each: on a machine others share, load drifts by the minute, and
    bursts taken in turn see the same drift. Prints the median of each case and its ratio to the baseline's median, and the
    workers' CPU time per answer: on a shared machine requests/s follow the neighbours' load,
    while the CPU an answer costs does not (a server whose workers keep the cores busy answers
    in inverse proportion to it)."""
    strokes, label = misread_drawing()
    misread = json.dumps({"strokes": strokes}).encode()
    cases = {
        "stranger": (url, bodies["strokes"], ""),
        "session, no corrections, a misread drawing": (url, misread, session_with_corrections(url, corrections=0, strokes=strokes, label=label)),
        "session, 50 corrections, a misread drawing": (url, misread, session_with_corrections(url, corrections=50, strokes=strokes, label=label)),
        **stood_cases(url, strokes, label, misread),
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="digitsite-baseline-") as folder, running_gunicorn({**env, "DIGITSITE_VAR_DIR": folder}, root=args.baseline) as (base, base_process):
        cases = {name: (where, body, cookie, pid) for name, (where, body, cookie) in cases.items()}
        cases = {"baseline: stranger": (base, bodies["strokes"], "", base_process.pid), **cases}
        for where, body, cookie, _ in cases.values():
            wrk(where, script_for(predicts(body), cookie), 2, 2, 1)  # warm
        runs: dict[str, list[dict]] = {name: [] for name in cases}
        for round_ in range(args.rounds):
            # In another order each round: load that drifts within a round would otherwise weigh on the same cases every time.
            for name, (where, body, cookie, server) in random.Random(round_).sample(list(cases.items()), len(cases)):
                cpu = workers_cpu_seconds(server)
                result = wrk(where, script_for(predicts(body), cookie), args.connections, args.seconds, args.threads)
                runs[name].append(result | {"cpu_ms": (workers_cpu_seconds(server) - cpu) * 1000 / max(result["requests"], 1)})
    baseline = statistics.median(r["rps"] for r in runs["baseline: stranger"])
    baseline_cpu = statistics.median(r["cpu_ms"] for r in runs["baseline: stranger"])
    figures = {}
    for name, results in runs.items():
        rps = statistics.median(r["rps"] for r in results)
        p99 = statistics.median(r["p99_ms"] for r in results)
        cpu = statistics.median(r["cpu_ms"] for r in results)
        figures[name] = {"rps_median": rps, "p99_median_ms": p99, "cpu_ms_median": cpu, "rps": [round(r["rps"]) for r in results],
                         "cpu_ms": [round(r["cpu_ms"], 3) for r in results], "errors": sum(r["errors"] for r in results)}  # fmt: skip
        print(f"{name:45s} median {rps:5.0f} requests/s ({rps / baseline - 1:+.0%} against the baseline), median p99 {p99:.1f} ms; "
              f"workers' CPU {cpu:.3f} ms an answer ({baseline_cpu / cpu - 1:+.0%} in answers per CPU second against the baseline); "
              f"bursts {', '.join(str(round(r['rps'])) for r in results)}; errors {figures[name]['errors']}", flush=True)
    return figures


def worker_rss_mb(master_pid: int) -> dict[int, float]:
    rss = {}
    for pid in worker_pids(master_pid):
        status = Path(f"/proc/{pid}/status").read_text()
        rss[pid] = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads (default 2)")
    parser.add_argument("--soak", type=int, metavar="SECONDS", help="the mixed soak instead, for this long (16 connections unless --connections)")
    parser.add_argument("--memory", action="store_true", help="strokes from a stranger; a misread drawing from a stranger, a session with no corrections and one with 50")
    parser.add_argument("--baseline", type=Path, help="with --memory: another checkout (today's site), its own gunicorn, measured in turn")
    parser.add_argument("--rounds", type=int, default=8, help="with --baseline: bursts of --seconds each, per case (default 8)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    import django

    django.setup()
    bodies = drawing_bodies()
    load = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="digitsite-load-"))
    env = {"DATABASE_URL": "", "DIGITSITE_VAR_DIR": str(workdir), "DIGITSITE_CACHE_URL": "",
           "DIGITSITE_PREDICT_RATE": "none", "DIGITSITE_FEEDBACK_RATE": "none"}  # fmt: skip
    results = {"load_average_before": load, "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs")
    try:
        if args.soak:  # the server's own count of 201s, beside wrk's: wrk drops what is in flight when it stops
            env["DIGITSITE_ACCESS_LOG"] = str(workdir / "access.log")
        with running_gunicorn(env) as (url, process):
            warm = script_for([("predict", bodies["strokes"]), ("predict", bodies["image"])])
            wrk(url, warm, 2, 2, 1)  # every worker loads the model
            if args.soak:
                connections = args.connections if args.connections != 8 else 16
                mix = [("predict", bodies["strokes"])] * 4 + [("predict", bodies["image"])] * 4
                mix += [("feedback", bodies["feedback"]), ("health", b"")]
                before = worker_rss_mb(process.pid)
                result = wrk(url, script_for(mix), connections, args.soak, args.threads)
                after = worker_rss_mb(process.pid)
                time.sleep(2)  # what was in flight when wrk stopped is answered, stored and logged
                with sqlite3.connect(workdir / "db.sqlite3") as db:
                    stored = db.execute("SELECT COUNT(*) FROM feedback_sample").fetchone()[0]
                sent_201 = sum(1 for line in open(workdir / "access.log") if '"POST /api/feedback/ HTTP/1.1" 201 ' in line)
                growth = {pid: (after.get(pid, float("nan")) - rss) / rss * 100 for pid, rss in before.items()}
                result |= {"stored_rows": stored, "answers_201": result["statuses"].get(201, 0), "server_sent_201": sent_201, "rss_before_mb": before,
                           "rss_after_mb": after, "rss_growth_pct": growth}  # fmt: skip
                print(f"soak {args.soak} s, {connections} connections (80% predict, 10% feedback, 10% health): "
                      f"{result['rps']:.0f} requests/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                      f"errors {result['errors']}, statuses {result['statuses']}")
                print(f"stored rows {stored}, 201 answers received by wrk {result['answers_201']}, sent by the server {sent_201} "
                      f"(access log); worker RSS "
                      + ", ".join(f"{before[pid]:.0f} -> {after.get(pid, float('nan')):.0f} MB ({growth[pid]:+.1f}%)" for pid in before))
                results["soak"] = result
            elif args.memory and args.baseline:
                results["memory_against_baseline"] = memory_against_baseline(url, process.pid, args, bodies, env)
            elif args.memory:
                # The usual drawing from a stranger (as above, today's figure), then a drawing the net
                # misreads: from a stranger, a browser with a session and nothing remembered, and one
                # whose 50 corrections of it each answer it.
                strokes, label = misread_drawing()
                misread = json.dumps({"strokes": strokes}).encode()
                senders = {
                    "stranger": (bodies["strokes"], ""),
                    "stranger, a misread drawing": (misread, ""),
                    "session, no corrections, a misread drawing": (misread, session_with_corrections(url, corrections=0, strokes=strokes, label=label)),
                    "session, 50 corrections, a misread drawing": (misread, session_with_corrections(url, corrections=50, strokes=strokes, label=label)),
                    **{name: case[1:] for name, case in stood_cases(url, strokes, label, misread).items()},
                }  # fmt: skip
                for sender, (body, cookie) in senders.items():
                    result = wrk(url, script_for(predicts(body), cookie), args.connections, args.seconds, args.threads)
                    print(f"predict, strokes from {sender}, {args.connections} connections, {args.seconds} s: "
                          f"{result['rps']:.0f} requests/s, p50 {result['p50_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms, "
                          f"p99 {result['p99_ms']:.1f} ms, errors {result['errors']}")
                    results[f"strokes, {sender}"] = result
            else:
                for kind in ("image", "strokes"):
                    result = wrk(url, script_for([("predict", bodies[kind])]), args.connections, args.seconds, args.threads)
                    print(f"predict, {kind} ({len(bodies[kind]) / 1000:.1f} kB body), {args.connections} connections, {args.seconds} s: "
                          f"{result['rps']:.0f} requests/s, p50 {result['p50_ms']:.1f} ms, p90 {result['p90_ms']:.1f} ms, "
                          f"p99 {result['p99_ms']:.1f} ms, errors {result['errors']}")
                    results[kind] = result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()
    results["load_average_after"] = load
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "http-load.jsonl", "a") as file:
        file.write(json.dumps(results, default=str) + "\n")


if __name__ == "__main__":
    main()
