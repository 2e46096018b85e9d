"""Does a person's own correction help them at once? The memory of corrections (recognizer.memory,
issue 40) measured on real pen digits, one source per writer.

Each writer's digits are split in two halves, stratified by digit (bench.feedback_loop.halves,
seed 0). The first half is sent to /api/predict/ as strokes, from that writer's own session (a
cookie jar: the page's session and CSRF cookies), and every wrong guess is corrected through
/api/feedback/ with a client_id, as the page does. Every answer the writer let stand is sent
back as the page sends it (`stood`: held until the first correction, which carries them, then
ten at a time with a guess, or with the next correction), unless --corrections-only. Then the second half is sent twice: from the
writer's session (with the memory) and from a client without cookies, a stranger, whose answer
is exactly the net's (without the memory): the same drawings, the same server. No retrain.

    python -m bench.memory_replay                     # the 20 writers not tuned on, through a running gunicorn
    python -m bench.memory_replay --tune              # offline: choose the distance on writers 3, 6, ..., 30

The distance (DIGITSITE_MEMORY_DISTANCE) is chosen with --tune on the ten writers whose digits
are the pen guard set (writers 3, 6, ..., 30), offline, with the very rule the site uses
(recognizer.memory.nearest) on the features of the graph this processor serves; the figures
are reported on the other twenty writers, never tuned on.
"""

import argparse
import contextlib
import http.cookiejar
import json
import os
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict

import numpy as np

from bench.feedback_loop import halves
from recognizer.fields import MAX_STOOD

STOOD_BATCH = 10  # draw.js sends what stood with a guess ten at a time
from testing.pendigits_data import PenDigit, layout, load_digits

SEED = 0


def tuning_writer(writer: int) -> bool:
    """Writers 3, 6, ..., 30: those the distance is chosen on (the pen guard set's writers)."""
    return writer % 3 == 0


def _django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
    django.setup()


def offline_reads(digits: list[PenDigit]) -> dict[int, tuple[int | None, np.ndarray]]:
    """Each digit's answer by the served net (None: not a digit, or nothing to read) and its features."""
    _django()
    from recognizer import preprocessing
    from recognizer.services import prediction_from_probabilities, softmax
    from recognizer.serving import active_model

    model = active_model()
    net = model.serving_net()
    reads = {}
    for digit in digits:
        image = preprocessing.strokes_to_input(layout(digit, SEED)).image
        if image is None:
            reads[digit.index] = (None, None, None)
            continue
        logits, features = net.read(preprocessing.normalize(image))
        probabilities = softmax(logits[0].astype(np.float64) / model.temperature)
        answer = prediction_from_probabilities(probabilities=probabilities, model="", model_input=image)
        reads[digit.index] = (answer.digit, features[0], probabilities)
    print(f"model {model.version}, served as {net.variant}")
    return reads


def offline_errors(
    teach: list[PenDigit], test: list[PenDigit], reads: dict, *, threshold: float, size: int = 50, stood: int = 100
) -> dict[int, tuple[int, int]]:
    """Per writer, second-half errors without and with the memory of their first half: its
    corrections (the newest `size`) and the drawings whose answer stood (the newest `stood`; 0:
    a memory of corrections only), as the page sends them and the site keeps them."""
    from recognizer.memory import plausible_floor, recall

    corrections: dict[int, list[tuple[np.ndarray, int]]] = defaultdict(list)
    kept: dict[int, list[tuple[np.ndarray, int]]] = defaultdict(list)
    for digit in teach:
        guess, features, _ = reads[digit.index]
        if features is None:
            continue
        (corrections if guess != digit.label else kept)[digit.writer].append((features, guess if guess == digit.label else digit.label))
    errors: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for digit in test:
        guess, features, probabilities = reads[digit.index]
        with_memory = guess
        # the newest of each, newest first, as the site reads them; a writer with no correction has no memory
        mine = corrections[digit.writer][-size:][::-1]
        memory = mine + (kept[digit.writer][-stood:][::-1] if mine and stood > 0 else [])
        if features is not None and memory:
            found = recall(
                features=features, probabilities=probabilities, stored=np.stack([m[0] for m in memory]),
                labels=[m[1] for m in memory], threshold=threshold, floor=plausible_floor(stood=stood),
            )  # fmt: skip
            if found is not None:
                with_memory = memory[found[0]][1]
        errors[digit.writer][0] += guess != digit.label
        errors[digit.writer][1] += with_memory != digit.label
    return {writer: tuple(pair) for writer, pair in errors.items()}


def tune(digits: list[PenDigit], *, stood: int) -> None:
    """Second-half errors of the tuning writers by distance threshold (the held-out writers are
    not read here); and the ceiling: errors whose guess -> label pair the writer corrected in
    the first half, the only ones a memory of corrections can mend."""
    teach, test = (
        [d for d in half if tuning_writer(d.writer)] for half in halves(digits, SEED)
    )  # split as the benchmark splits all writers, then only the tuning writers kept
    digits = teach + test
    reads = offline_reads(digits)
    corrected = {(d.writer, reads[d.index][0], d.label) for d in teach if reads[d.index][1] is not None and reads[d.index][0] != d.label}
    wrong = [d for d in test if reads[d.index][0] != d.label]
    ceiling = sum((d.writer, reads[d.index][0], d.label) in corrected for d in wrong)
    print(f"tuning writers {sorted({d.writer for d in digits})}: {len(wrong)} second-half errors, {ceiling} of a pair corrected in the first half")
    print("threshold: second-half errors without -> with the memory (worst writer's change)")
    for threshold in (0.02, 0.05, 0.08, 0.10, 0.12, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50):
        errors = offline_errors(teach, test, reads, threshold=threshold, stood=stood)
        before, after = sum(p[0] for p in errors.values()), sum(p[1] for p in errors.values())
        print(f"  {threshold:.2f}: {before:3d} -> {after:3d} (worst {max(p[1] - p[0] for p in errors.values()):+d})", flush=True)


class Client:
    """One writer's browser: its own cookies (session, CSRF), as the page keeps them."""

    def __init__(self, url: str, *, cookies: bool = True):
        self.url = url
        self.jar = http.cookiejar.CookieJar() if cookies else None
        handlers = [urllib.request.HTTPCookieProcessor(self.jar)] if cookies else []
        self.opener = urllib.request.build_opener(*handlers)
        if cookies:
            self.opener.open(f"{url}/", timeout=30).read()  # the page: it sets the CSRF cookie

    def _post(self, path: str, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.jar is not None:
            token = next((c.value for c in self.jar if c.name == "csrftoken"), "")
            headers.update({"X-CSRFToken": token, "Referer": self.url + "/"})
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
        with self.opener.open(request, timeout=30) as answer:
            return json.loads(answer.read())

    def predict(self, digit: PenDigit, stood: list[dict] = ()) -> dict:
        body = {"strokes": [stroke.tolist() for stroke in layout(digit, SEED)]}
        return self._post("/api/predict/", {**body, "stood": list(stood)} if stood else body)

    def correct(self, digit: PenDigit, label: int, stood: list[dict] = ()) -> dict:
        body = {"strokes": [stroke.tolist() for stroke in layout(digit, SEED)], "label": label, "client_id": str(uuid.uuid4())}
        return self._post("/api/feedback/", {**body, "stood": list(stood)} if stood else body)


def replay(digits: list[PenDigit], *, url: str, writers: set[int], stood: bool = True, stood_batch: int = STOOD_BATCH) -> dict:
    """The benchmark through a running site, for `writers`; per writer: second-half errors
    without and with the memory, corrections sent, answers the memory changed. `stood`: the
    first half's answers the writer let stand are sent back as the page sends them (held until
    the first correction, which carries them; then with the next guess)."""
    teach, test = halves(digits, SEED)  # split over all writers, as --tune does, whoever is replayed
    stranger = Client(url, cookies=False)
    by_writer: dict[int, dict] = {}
    for writer in sorted(writers):
        me = Client(url)
        pairs, corrected = set(), 0  # the guess -> label pairs this writer corrected
        held: list[dict] = []  # as the page holds them (draw.js: STOOD_MOST)
        for digit in (d for d in teach if d.writer == writer):
            sending = held if corrected and len(held) >= stood_batch else []
            answer = me.predict(digit, sending)
            if sending:
                held = []
            if answer["digit"] != digit.label and answer["input_image"] is not None:
                me.correct(digit, digit.label, held)
                held = []
                pairs.add((answer["digit"], digit.label))
                corrected += 1
            elif stood and answer["digit"] is not None:
                held = [*held, {"image": answer["input_image"], "digit": answer["digit"]}][-MAX_STOOD:]
        figures = {"corrections": corrected, "drawings": 0, "without": 0, "with": 0, "changed": 0, "changed_stood": 0, "mendable": 0, "mended": 0, "broken": 0}
        for digit in (d for d in test if d.writer == writer):
            mine, net = me.predict(digit), stranger.predict(digit)
            if net["reason"] in ("your_correction", "your_drawing"):
                raise RuntimeError("a stranger got an answer from someone's memory")
            figures["drawings"] += 1
            figures["without"] += net["digit"] != digit.label
            figures["mendable"] += net["digit"] != digit.label and (net["digit"], digit.label) in pairs
            figures["with"] += mine["digit"] != digit.label
            figures["mended"] += net["digit"] != digit.label and mine["digit"] == digit.label
            figures["broken"] += net["digit"] == digit.label and mine["digit"] != digit.label
            figures["changed"] += mine["reason"] == "your_correction"
            figures["changed_stood"] += mine["reason"] == "your_drawing"
        by_writer[writer] = figures
        print(f"  writer {writer:2d}: {figures['corrections']:2d} corrections; second half {figures['drawings']} drawings, "
              f"wrong {figures['without']:2d} -> {figures['with']:2d} with the memory ({figures['mended']} mended, {figures['broken']} made wrong; answers from it: {figures['changed']} "
              f"like a correction, {figures['changed_stood']} like a drawing that stood; "
              f"{figures['mendable']} errors of a pair corrected before)", flush=True)  # fmt: skip
    return by_writer


@contextlib.contextmanager
def site():
    """gunicorn as `make serve` starts it, on a fresh SQLite database in a temporary folder, the
    rate limits off; the shipped model serves."""
    from testing.server import running_gunicorn

    with tempfile.TemporaryDirectory(prefix="digitsite-memory-") as folder:
        env = {"DATABASE_URL": "", "DIGITSITE_VAR_DIR": folder, "DIGITSITE_CACHE_URL": "", "DIGITSITE_ACCESS_LOG": "off",
               "DIGITSITE_PREDICT_RATE": "none", "DIGITSITE_FEEDBACK_RATE": "none"}  # fmt: skip
        with running_gunicorn(env) as (url, _):
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune", action="store_true", help="offline, on the tuning writers: errors by distance threshold")
    parser.add_argument("--url", help="a running site (default: start gunicorn on a fresh database here)")
    parser.add_argument("--all-writers", action="store_true", help="also the tuning writers (not only the held-out ones)")
    parser.add_argument("--corrections-only", action="store_true", help="send no answers that stood: a memory of corrections alone (default: off)")
    parser.add_argument("--stood-batch", type=int, default=STOOD_BATCH, help=f"send what stood with a guess this many at a time (default {STOOD_BATCH}, as draw.js)")
    args = parser.parse_args()
    digits = load_digits()
    if args.tune:
        tune(digits, stood=0 if args.corrections_only else MAX_STOOD)
        return
    writers = {d.writer for d in digits if args.all_writers or not tuning_writer(d.writer)}
    started = time.perf_counter()
    if args.url:
        by_writer = replay(digits, url=args.url, writers=writers, stood=not args.corrections_only, stood_batch=args.stood_batch)
    else:
        with site() as url:
            by_writer = replay(digits, url=url, writers=writers, stood=not args.corrections_only, stood_batch=args.stood_batch)
    total = {key: sum(f[key] for f in by_writer.values()) for key in ("corrections", "drawings", "without", "with", "changed", "changed_stood", "mendable", "mended", "broken")}
    worst = max(f["with"] - f["without"] for f in by_writer.values())
    print(f"{len(by_writer)} writers, {total['corrections']} corrections of the first halves; second halves: "
          f"{total['drawings']} drawings, wrong {total['without']} without the memory -> {total['with']} with it "
          f"({1 - total['with'] / max(total['without'], 1):.0%} fewer: {total['mended']} mended, {total['broken']} made wrong; answers from the memory: {total['changed']} like a correction, "
          f"{total['changed_stood']} like a drawing that stood; {total['mendable']} of the errors were of a guess -> label pair the writer had corrected); "
          f"worst writer {worst:+d}; {time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
