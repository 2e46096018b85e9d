"""A person's own corrections, remembered at once (issue 40): a drawing close to one that its
sender corrected lately is answered with the label they gave, before any retrain.

"Close" is measured in the net's own feature space: the pooled features the last layer reads
(the serving graph's second output, recognizer.servingform.FEATURES), by cosine distance.
Both sides of a comparison come from the same graph: a correction keeps the features the graph
that read it made (`features_of`: model version and variant), and a process serving another
graph (a new version, or another variant on another processor) makes them again from the
correction's stored 28x28 input. So a drawing compared with itself is at distance 0 everywhere,
and two processes serving the same graph give the same answer to the same drawing.

What is remembered lives in the database (RememberedCorrection), never in one process: every
web process and machine behind one database answers alike. A process keeps only features it
made again for its own graph (`_remade`), which the database's rows determine.

The feedback app writes here (feedback -> recognizer): `memory_remember` when a correction is
stored, `memory_relabel` when its sender changes the answer, `memory_forget` when they take it
back or a reviewer rejects it. Per source, the newest settings.MEMORY_SIZE corrections of the last
settings.MEMORY_HOURS hours count. A source with none (a stranger) costs one indexed read, and
a request without a session or signed-in user none at all (recognizer.api).
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from recognizer.labels import NOT_A_DIGIT
from recognizer.models import RememberedCorrection

REASON = "your_correction"
# A correction answers only a drawing for which the net itself gives the person's label at least
# this calibrated probability: a writer's 7 misread as 1 and corrected says nothing about their
# real 1s, which the net reads as 7 with far less. Chosen with the distance on the tuning
# writers (bench/memory_replay.py --tune): from 0.05 to 0.30 of distance it kept every one of
# them from losing a drawing, where without it even 0.02 lost one writer 9.
PLAUSIBLE = 0.01
REMADE_KEPT = 10_000  # features made again for this process's graph (512 bytes each), newest kept


@dataclass(frozen=True)
class Recalled:
    """The correction a drawing resembles: its sample's id, the label its sender gave, and how far."""

    sample_id: int
    label: int
    distance: float


def memory_on() -> bool:
    return bool(settings.MEMORY)


def memory_note(*, has_features: bool) -> str | None:
    """Why the memory is off for the model serving, for health; None when it is on."""
    if not memory_on():
        return "switched off (DIGITSITE_MEMORY)"
    if not has_features:
        return "the model's serving form was built without features: rebuild it (manage.py build_serving_forms)"
    return None


def features_of(*, version: str, variant: str) -> str:
    """Names the graph that made features: a model version and its serving variant."""
    return f"{version} {variant}"


def memory_remember(
    *,
    source: str,
    sample_id: int,
    label: int,
    guess: int,
    model_input: np.ndarray,
    features: np.ndarray | None,
    made_by: str,
) -> None:
    """Remember a correction (a label other than the guess) of `source`; anything else is not
    remembered: a confirmation changes no answer, a drawing "not a digit" is no digit to answer
    with, an unknown source ("", a command's) is nobody's, and a model without features cannot
    compare. `features` None: none made yet (each process makes them from `model_input` when it
    first compares). Keeps the source's newest MEMORY_SIZE of the window; older ones go."""
    if not source or not remembers(label=label, guess=guess):
        return
    RememberedCorrection.objects.create(
        source=source,
        sample_id=sample_id,
        label=label,
        guess=guess,
        model_input=np.ascontiguousarray(model_input, dtype=np.uint8).tobytes(),
        features=b"" if features is None else np.ascontiguousarray(features, dtype=np.float32).tobytes(),
        features_of="" if features is None else made_by,
    )
    kept = [row[0] for row in _recent_rows(source=source)]  # sample ids: unique, as the rows' ids are
    RememberedCorrection.objects.filter(source=source).exclude(sample_id__in=kept).delete()


def remembers(*, label: int, guess: int) -> bool:
    """Whether an answer with this label, to this guess, is remembered (the memory being on)."""
    return memory_on() and label != guess and label < NOT_A_DIGIT


def memory_relabel(*, source: str, sample_id: int, label: int, guess: int, model_input: np.ndarray) -> None:
    """The sender changed its answer: from now on the new label counts. A confirmation changed
    into a correction is remembered from now (its features made by each process when it first
    compares); a correction changed into the guess, or into "not a digit", is forgotten."""
    remembered = RememberedCorrection.objects.filter(sample_id=sample_id)
    if label == guess or label >= NOT_A_DIGIT:
        remembered.delete()
    elif not remembered.update(label=label):
        memory_remember(source=source, sample_id=sample_id, label=label, guess=guess, model_input=model_input, features=None, made_by="")


def memory_forget(*, sample_ids: Iterable[int] = (), sources: Iterable[str] = ()) -> None:
    """Forgotten at once, on every process (they all read here): answers their sender took back
    or a reviewer rejected (`sample_ids`), and everything of senders rejected whole (`sources`)."""
    RememberedCorrection.objects.filter(Q(sample_id__in=list(sample_ids)) | Q(source__in=list(sources))).delete()


def memory_recall(
    *,
    source: str | None,
    features: np.ndarray | None,
    probabilities: np.ndarray,
    made_by: str,
    remake: Callable[[np.ndarray], np.ndarray],
) -> Recalled | None:
    """The correction of `source`'s memory nearest to a drawing's `features` (made by the graph
    `made_by`) among those whose label the net gives it at least PLAUSIBLE (`probabilities`,
    calibrated), if it is within settings.MEMORY_DISTANCE; else None. `remake` makes features
    of (N, 28, 28) uint8 inputs with the same graph, for corrections another graph read."""
    if not memory_on() or not source or features is None:
        return None
    plausible = [label for label in range(min(len(probabilities), NOT_A_DIGIT)) if probabilities[label] >= PLAUSIBLE]
    rows = _recent_rows(source=source, labels=plausible)  # recall's first rule, in the query: only those rows' features travel
    if not rows:
        return None
    if all(row[3] == made_by for row in rows):  # the usual case: every correction read by this graph, one buffer
        stored = np.frombuffer(b"".join(bytes(row[2]) for row in rows), dtype=np.float32).reshape(len(rows), -1)
    else:
        stored = [np.frombuffer(bytes(row[2]), dtype=np.float32) if row[3] == made_by else None for row in rows]
        _remade_fill(stored, ids=[row[4] for row in rows], made_by=made_by, remake=remake, size=np.size(features))
        stored = np.stack(stored)
    found = recall(
        features=features, probabilities=probabilities, stored=stored, labels=[row[1] for row in rows],
        threshold=settings.MEMORY_DISTANCE,
    )  # fmt: skip
    if found is None:
        return None
    index, distance = found
    return Recalled(sample_id=rows[index][0], label=rows[index][1], distance=distance)


def recall(
    *, features: np.ndarray, probabilities: np.ndarray, stored: np.ndarray, labels: list[int], threshold: float
) -> tuple[int, float] | None:
    """The rule, for the site and for the benchmark that chose its numbers (bench/memory_replay.py):
    among the corrections (`stored` features, newest first, and their `labels`) whose label the
    net gives this drawing at least PLAUSIBLE (`probabilities`), the nearest by cosine distance
    if it is within `threshold`: (its index, the distance); else None."""
    plausible = [i for i, label in enumerate(labels) if probabilities[label] >= PLAUSIBLE]
    if not plausible:
        return None
    found = nearest(features=features, stored=np.asarray(stored)[plausible], threshold=threshold)
    return None if found is None else (plausible[found[0]], found[1])


def nearest(*, features: np.ndarray, stored: np.ndarray, threshold: float) -> tuple[int, float] | None:
    """The index of the row of `stored` (N, D) nearest to `features` (D,) by cosine distance,
    and that distance, if it is at most `threshold`; else None. The one rule, for the site and
    for the benchmark that chose the threshold (bench/memory_replay.py)."""
    query = np.asarray(features, dtype=np.float64).ravel()
    rows = np.asarray(stored, dtype=np.float64).reshape(len(stored), -1)
    norms = np.linalg.norm(rows, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
    distances = 1.0 - (rows @ query) / np.maximum(norms, 1e-12)
    index = int(np.argmin(distances))  # the first of equals: the newest (rows come newest first)
    distance = float(distances[index])
    return (index, distance) if distance <= threshold else None


def _recent_rows(*, source: str, labels: list[int] | None = None) -> list[tuple]:
    """The source's newest MEMORY_SIZE corrections of the last MEMORY_HOURS, newest first, as
    (sample_id, label, features, features_of, id); with `labels`, only those of them with one of
    these labels (the bound is still the newest MEMORY_SIZE of all). One plain query: this is
    read on every guess from a browser with a session, and building the ORM's query cost about
    as much as running it (bench/http_load.py --memory)."""
    if labels is not None and not labels:
        return []
    table = RememberedCorrection._meta.db_table
    since = connection.ops.adapt_datetimefield_value(timezone.now() - timedelta(hours=float(settings.MEMORY_HOURS)))
    recent = (
        f"SELECT sample_id, label, features, features_of, created_at, id FROM {table} WHERE source = %s AND created_at >= %s "
        "ORDER BY created_at DESC, id DESC LIMIT %s"
    )
    chosen = "" if labels is None else f" WHERE label IN ({', '.join(['%s'] * len(labels))})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT sample_id, label, features, features_of, id FROM ({recent}) AS recent{chosen} ORDER BY created_at DESC, id DESC",
            [source, since, int(settings.MEMORY_SIZE), *(labels or [])],
        )
        return cursor.fetchall()


_remade: "OrderedDict[tuple[int, str], np.ndarray]" = OrderedDict()  # (remembered row's id, graph) -> features
_remade_lock = threading.Lock()


def _remade_fill(stored: list, *, ids: list[int], made_by: str, remake: Callable[[np.ndarray], np.ndarray], size: int) -> None:
    """Fill the gaps of `stored` with features this process's graph makes of those corrections'
    inputs: once per remembered row and graph, then kept (a cache of what the rows determine).
    Keyed by the row's own id, which neither SQLite (AUTOINCREMENT) nor PostgreSQL gives twice."""
    missing = []
    with _remade_lock:
        for i, item in enumerate(stored):
            if item is None:
                if (hit := _remade.get((ids[i], made_by))) is not None:
                    stored[i] = hit
                else:
                    missing.append(i)
    if missing:
        inputs = dict(RememberedCorrection.objects.filter(id__in=[ids[i] for i in missing]).values_list("id", "model_input"))
        wanted = [i for i in missing if ids[i] in inputs]  # the others were taken back between the two reads
        made = remake(np.stack([np.frombuffer(bytes(inputs[ids[i]]), dtype=np.uint8).reshape(28, 28) for i in wanted])) if wanted else []
        with _remade_lock:
            for i, row in zip(wanted, made):
                stored[i] = _remade[(ids[i], made_by)] = np.asarray(row, dtype=np.float32)
                while len(_remade) > REMADE_KEPT:
                    _remade.popitem(last=False)
    for i in range(len(stored)):  # taken back between the two reads: a zero vector is never near (distance 1)
        if stored[i] is None:
            stored[i] = np.zeros(size, dtype=np.float32)
