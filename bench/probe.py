"""Probe a running site as an attacker and an unlucky operator would, on 127.0.0.1 only.

    python -m bench.probe                 # starts its own runserver in a temporary folder
    python -m bench.probe --url http://127.0.0.1:8000 --no-faults   # a site already running

Sends hand-made hostile requests (bounded: about 60, one at a time) and prints what each got;
then, on its own server only, injects faults (broken, deleted and unreadable model files, a
locked database) and checks that the site answers as it should and recovers. Prints the counts:
requests tried, answered 4xx JSON, answered 5xx (target: 0), answered anything but JSON
(target: 0), faults survived.
"""

import argparse
import base64
import http.client
import io
import json
import os
import sqlite3
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.memory import hostile_inputs
from testing.server import drop_root_file_powers, running_server

CSRF = "probeprobeprobeprobeprobeprobe12"  # any 32 letters and digits: cookie and header agree


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]
    seconds: float

    def json(self) -> dict:
        return json.loads(self.body)


def send(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None, chunked: bool = False) -> Answer:
    host = urllib.parse.urlsplit(url)
    assert host.hostname == "127.0.0.1", "the probe only talks to 127.0.0.1"
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    start = time.perf_counter()
    try:
        try:
            connection.request(method, path, body=iter([body]) if chunked else body, headers=headers or {}, encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (411, 413) and closed before the whole body was sent
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    return Answer(response.status, response.getheader("Content-Type", ""), content, dict(response.getheaders()), time.perf_counter() - start)


def as_json(payload: object) -> tuple[bytes, dict]:
    return json.dumps(payload).encode(), {"Content-Type": "application/json"}


def with_csrf(headers: dict) -> dict:
    return {**headers, "Cookie": f"csrftoken={CSRF}", "X-CSRFToken": CSRF}


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def exif_photo() -> bytes:
    """A 7 photographed sideways: stored turned left, EXIF orientation 6 says turn it right."""
    from recognizer.tests.drawings import draw

    rgba = draw(7)
    alpha = rgba[..., 3:] / 255.0
    white = (rgba[..., 0] * alpha[..., 0] + 255 * (1 - alpha[..., 0])).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(np.rot90(white, 1)).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def hostile_requests() -> list[tuple[str, str, str, bytes | None, dict, bool, set[int]]]:
    """(name, method, path, body, headers, chunked, the statuses that are right)."""
    from recognizer.tests.drawings import draw, png

    images = hostile_inputs()
    drawing = png(draw(7))
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")  # 400 megapixels in about 50 kB
    huge = buffer.getvalue()
    big_form = "&".join(f"f{i}=1" for i in range(1200)).encode()
    files = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="f%d"; filename="f.png"\r\n\r\nx\r\n' % i for i in range(150)
    ) + b"--B--\r\n"
    rows = []

    def add(name, method, path, body=None, headers=None, chunked=False, ok=frozenset({400})):
        rows.append((name, method, path, body, headers or {}, chunked, set(ok)))

    for path in ("/api/predict/", "/api/feedback/"):
        add(f"{path}: not JSON", "POST", path, b"{not json", {"Content-Type": "application/json"})
        add(f"{path}: [[[ 100,000 deep", "POST", path, b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "application/json"})
        add(f"{path}: {{\"a\": 100,000 deep", "POST", path, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, {"Content-Type": "application/json"})
        add(f"{path}: empty JSON object", "POST", path, *as_json({}))
        add(f"{path}: image is a number", "POST", path, *as_json({"image": 7, "label": 1}))
        add(f"{path}: image is a list", "POST", path, *as_json({"image": [1, [2]], "label": 1}))
        add(f"{path}: bad base64", "POST", path, *as_json({"image": "data:image/png;base64,%%%", "label": 1}))
        add(f"{path}: GIF", "POST", path, *as_json({"image": "data:image/gif;base64,R0lGODlh", "label": 1}))
        add(f"{path}: text declared PNG", "POST", path, *as_json({"image": data_url(b"hello"), "label": 1}))
        add(f"{path}: truncated PNG", "POST", path, *as_json({"image": data_url(drawing[:200]), "label": 1}))
        add(f"{path}: NaN literal", "POST", path, b'{"image": NaN, "label": NaN}', {"Content-Type": "application/json"})
        add(f"{path}: lone surrogate", "POST", path, b'{"image": "data:image/png;base64,\\ud800"}', {"Content-Type": "application/json"})
        add(f"{path}: body over 2 MB", "POST", path, *as_json({"image": "A" * 2_200_000}), ok={413})
        add(f"{path}: PNG 16-bit RGBA 4096x4096", "POST", path, *as_json({"image": data_url(images["PNG 16-bit RGBA 4096x4096, all zero"]), "label": 1}), ok={413})
        add(f"{path}: PNG 20000x20000, 1 bit", "POST", path, *as_json({"image": data_url(huge), "label": 1}), ok={413})
        add(f"{path}: progressive JPEG 4096x4096", "POST", path, *as_json({"image": data_url(images["JPEG 4096x4096 colour, progressive"], "image/jpeg"), "label": 1}), ok={413})
        add(f"{path}: form instead of JSON", "POST", path, b"image=x&label=1", {"Content-Type": "application/x-www-form-urlencoded"}, ok={415})
        add(f"{path}: chunked, no Content-Length", "POST", path, *as_json({"image": data_url(drawing), "label": 7}), chunked=True, ok={411})
        add(f"{path}: Content-Length not a number", "POST", path, b"", {"Content-Type": "application/json", "Content-Length": "abc"}, ok={400})
        add(f"{path}: GET", "GET", path, ok={405})
        add(f"{path}: DELETE", "DELETE", path, ok={405})
        add(f"{path}: a host not allowed", "POST", path, *as_json({"image": data_url(drawing)}), ok={400})
        rows[-1][4]["Host"] = "evil.example"
    predict = "/api/predict/"
    add("predict: strokes as a string", "POST", predict, *as_json({"strokes": "M 0 0 L 10 10"}))
    add("predict: 20,000 points", "POST", predict, *as_json({"strokes": [[[i % 400, i % 300] for i in range(20_000)]]}))
    add("predict: 1,000 strokes", "POST", predict, *as_json({"strokes": [[[1, 1], [2, 2]]] * 1000}))
    add("predict: coordinates 1e300", "POST", predict, *as_json({"strokes": [[[1e300, 0], [0, 1e300]]]}))
    add("predict: coordinates NaN", "POST", predict, b'{"strokes": [[[NaN, 0], [1, 1]]]}', {"Content-Type": "application/json"})
    add("predict: points nested deeper", "POST", predict, *as_json({"strokes": [[[[[1, 2]]]]]}))
    add("predict: strokes and an image", "POST", predict, *as_json({"strokes": [[[1, 1], [300, 300]]], "image": data_url(drawing)}))
    feedback = "/api/feedback/"
    add("feedback: label 10", "POST", feedback, *as_json({"image": data_url(drawing), "label": 10}))
    add("feedback: label 1e400", "POST", feedback, b'{"image": "x", "label": 1e400}', {"Content-Type": "application/json"})
    add("feedback: empty canvas", "POST", feedback, *as_json({"image": data_url(png(np.zeros((400, 400, 4), np.uint8))), "label": 1}))
    add("feedback: no CSRF token (forged cross-site post)", "POST", feedback, *as_json({"image": data_url(drawing), "label": 7}), ok={403})
    rows[-1][4]["Cookie"] = f"csrftoken={CSRF}"
    for name, content_type, body in [
        ("multipart without a boundary", "multipart/form-data", b"--x\r\n\r\n--x--"),
        ("1,200 form fields", "application/x-www-form-urlencoded", big_form),
        ("150 files", "multipart/form-data; boundary=B", files),
    ]:
        add(f"feedback with a csrftoken cookie: {name}", "POST", feedback, body, {"Content-Type": content_type, "Cookie": f"csrftoken={CSRF}"}, ok={415})
    for path in ("/api/", "/api/nope/", "/api/predict/extra", "/api/health/x/y", "/api/%00/", "/api/" + "a" * 5000):
        add(f"unknown URL {path[:30]}", "GET", path, ok={404})
    add("/api/predict without the slash", "POST", "/api/predict", *as_json({"image": data_url(drawing)}), ok={308})
    add("/api/health/ POST", "POST", "/api/health/", ok={405})
    # Accepted: these must be answered 200/201 with the right reading, within the memory budget.
    add("predict: JPEG with EXIF orientation 6", "POST", "/api/predict/", *as_json({"image": data_url(exif_photo(), "image/jpeg")}), ok={200})
    add("predict: baseline JPEG 4096x4096", "POST", "/api/predict/", *as_json({"image": data_url(images["JPEG 4096x4096 gray, baseline"], "image/jpeg")}), ok={200})
    add("feedback: PNG + 1.45 MB after its end", "POST", feedback, *as_json({"image": data_url(drawing + b"\0" * 1_450_000), "label": 7}), ok={201})
    return rows


def probe_requests(url: str) -> dict:
    counts = {"tried": 0, "right status": 0, "4xx JSON": 0, "5xx": 0, "not JSON": 0}
    print(f"{'request':62} {'answer':>6} {'ms':>6}  message")
    for name, method, path, body, headers, chunked, ok in hostile_requests():
        if method == "POST" and path.startswith("/api/feedback/") and "Cookie" not in headers:
            headers = with_csrf(headers)
        answer = send(url, method, path, body, headers, chunked)
        counts["tried"] += 1
        is_json = answer.content_type.startswith("application/json")
        counts["right status"] += answer.status in ok
        counts["4xx JSON"] += 400 <= answer.status < 500 and is_json
        counts["5xx"] += answer.status >= 500
        counts["not JSON"] += not is_json
        message = answer.json().get("message", "") if is_json else answer.body[:60]
        if name.startswith("predict: JPEG with EXIF"):
            message = f"digit {answer.json()['digit']} (a 7 photographed sideways)"
        message = "".join(c if c.isprintable() else "?" for c in str(message))  # the URL with %00 comes back
        flag = "" if answer.status in ok and is_json else "   <-- UNEXPECTED"
        print(f"{name[:62]:62} {answer.status:>6} {answer.seconds * 1000:6.0f}  {str(message)[:70]}{flag}")
    return counts


# -- faults -----------------------------------------------------------------------------------


def probe_faults(url: str, var: Path) -> tuple[int, int]:
    """Inject each fault into the server's own folder, check its answers, undo it."""
    import django

    django.setup()
    from recognizer.modelfile import model_load
    from recognizer.publishing import model_publish
    from recognizer.store import model_activate, model_versions
    from recognizer.tests.drawings import draw, png

    models = var / "models"
    shipped = model_load(path=Path(os.environ["DIGITSITE_SHIPPED"]))
    model_publish(net=shipped.net, metadata={**shipped.metadata, "version": "probe-v1"}, activate=True)
    drawing = {"image": data_url(png(draw(7)))}
    results = []

    def predict() -> Answer:
        return send(url, "POST", "/api/predict/", *as_json(drawing))

    def health() -> dict:
        return send(url, "GET", "/api/health/").json()

    def check(name: str, ok: bool, detail: str) -> None:
        results.append(ok)
        print(f"{'survived' if ok else 'FAILED  '}  {name}: {detail}")

    def healthy_again() -> bool:
        return health()["status"] == "ok" and predict().status == 200

    from recognizer.models import ModelVersion

    predict()  # the server loads probe-v1: the last good model from now on
    good = bytes(ModelVersion.objects.get(version="probe-v1").data)
    header = 8 + int.from_bytes(good[:8], "little")
    checked = 1.3  # the server checks the active version once a second
    for number, (name, broken) in enumerate([
        ("weights overwritten with NaN", good[:header] + np.full((len(good) - header) // 4, np.nan, np.float32).tobytes()),
        ("weights overwritten with random bytes", good[:header] + np.random.default_rng(0).bytes(len(good) - header)),
        ("model bytes truncated", good[: len(good) // 2]),
        ("model bytes empty", b""),
    ]):  # fmt: skip
        version = f"probe-broken-{number}"
        ModelVersion.objects.create(version=version, data=broken)
        try:
            model_activate(version=version)
            refused = False
        except Exception:
            refused = True
        check(f"{name}: activation refused", refused, "model_activate loads a version before making it active")
        # Made active behind the store's back, as a bad restore of the database would.
        ModelVersion.objects.update(active=False)
        ModelVersion.objects.filter(version=version).update(active=True)
        time.sleep(checked)
        answer, state = predict(), health()
        ok = answer.status == 200 and answer.json()["model"] == "probe-v1" and state["status"] == "degraded"
        check(name, ok, f"predict {answer.status} by {answer.json().get('model')}, health {state['status']}: {str(state['problem'])[:80]}")
        model_activate(version="probe-v1")
        time.sleep(checked)
        check(f"{name}: recovered", healthy_again(), "health ok, predict 200 once probe-v1 is active again")

    os.chmod(models, 0)
    answer, state = predict(), health()
    check("model folder unreadable", answer.status == 200 and answer.json()["model"] == "probe-v1", f"predict {answer.status}, health {state['status']}: {str(state['problem'])[:80]}")
    os.chmod(models, 0o755)
    check("model folder unreadable: recovered", healthy_again(), "chmod 755")

    modes = {oct(path.stat().st_mode & 0o777) for path in (models / "versions").glob("*")}
    check("local model copies readable by other users", modes == {"0o644"}, f"modes {sorted(modes)}")
    check("kept versions", "probe-v1" in [m.version for m in model_versions()], "probe-v1 kept")

    holder = sqlite3.connect(var / "db.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing for a long time
    correction = send(url, "POST", "/api/feedback/", *(lambda b, h: (b, with_csrf(h)))(*as_json({**drawing, "label": 7})))
    guess, state = predict(), send(url, "GET", "/api/health/")
    holder.execute("ROLLBACK")
    holder.close()
    check(
        "database locked",
        correction.status == 503 and "Retry-After" in correction.headers and guess.status == 200 and guess.seconds < 1,
        f"correction {correction.status} after {correction.seconds:.1f} s (Retry-After {correction.headers.get('Retry-After')}), "
        f"predict {guess.status} in {guess.seconds * 1000:.0f} ms, health {state.status} in {state.seconds * 1000:.0f} ms",
    )
    again = send(url, "POST", "/api/feedback/", *(lambda b, h: (b, with_csrf(h)))(*as_json({**drawing, "label": 7})))
    check("database locked: recovered", again.status == 201, f"correction {again.status} once the lock is gone")
    return sum(results), len(results)


def probe_rate_limit(env: dict) -> str:
    """30 corrections a minute per client, each with a new X-Forwarded-For: the header buys nothing."""
    with running_server(env={**env, "DIGITSITE_FEEDBACK_RATE": "5/min"}) as url:
        from recognizer.tests.drawings import draw, png

        body, headers = as_json({"image": data_url(png(draw(7))), "label": 7})
        codes = [send(url, "POST", "/api/feedback/", body, with_csrf({**headers, "X-Forwarded-For": f"10.0.{i}.1"})).status for i in range(10)]
    accepted = codes.count(201)
    return f"{accepted} of 10 corrections with changing X-Forwarded-For accepted at 5/min ({'right' if accepted == 5 else 'WRONG'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a site already running on 127.0.0.1 (default: start one in a temporary folder)")
    parser.add_argument("--no-faults", action="store_true", help="only the requests, no fault injection (default: faults too, on its own server)")
    args = parser.parse_args()

    if args.url:
        counts = probe_requests(args.url)
        print(json.dumps(counts))
        return
    with tempfile.TemporaryDirectory() as folder:
        var = Path(folder)
        root = Path(__file__).resolve().parent.parent
        env = {
            "DIGITSITE_VAR_DIR": str(var),
            "DIGITSITE_SECRET_KEY": "probe",
            "DIGITSITE_PREDICT_RATE": "none",
            "DIGITSITE_FEEDBACK_RATE": "none",
            "DIGITSITE_SHIPPED": str(root / "recognizer" / "weights" / "digitnet.safetensors"),
            "DJANGO_SETTINGS_MODULE": "digitsite.settings",
        }
        os.environ.update(env)
        # The server runs without root's file powers, as a web server's own user would.
        with running_server(env=env, preexec_fn=drop_root_file_powers) as url:
            counts = probe_requests(url)
            survived = probe_faults(url, var) if not args.no_faults else (0, 0)
        limit = probe_rate_limit(env)
    print()
    print(
        f"requests tried: {counts['tried']}, right status: {counts['right status']}, 4xx JSON: {counts['4xx JSON']}, "
        f"5xx: {counts['5xx']}, not JSON: {counts['not JSON']}"
    )
    print(f"faults survived: {survived[0]} of {survived[1]} checks")
    print(f"rate limit: {limit}")


if __name__ == "__main__":
    main()
