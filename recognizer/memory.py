"""A person's own corrections, remembered at once (issue 40): a drawing close to one that its
sender corrected lately is answered with the label they gave, before any retrain.

Beside the corrections, the memory keeps the sender's recent drawings whose answer they let
stand (the page sends them along once it has a correction to remember: `memory_remember_stood`).
They answer too, with the digit that stood: a writer's 9 read as 4 lies close to their own 9s
that were read right, and a drawing close to one that stood is not pulled to a correction it
merely resembles less. Without them a memory can mend only an error of a digit the person
corrected before (22 of the 42 errors of the held-out pen writers, docs/results.md).

"Close" is measured in the net's own feature space: the pooled features the last layer reads
(the serving graph's second output, recognizer.servingform.FEATURES), by cosine distance.
Both sides of a comparison come from the same graph: a correction keeps the features the graph
that read it made (`features_of`: model version and variant), and a process serving another
graph (a new version, or another variant on another processor) makes them again from the
correction's stored 28x28 input. So a drawing compared with itself is at distance 0 everywhere,
and two processes serving the same graph give the same answer to the same drawing.

What is remembered lives in the database (RememberedCorrection), never in one process: every
web process and machine behind one database answers alike. A process keeps what it read: a
source's rows' ids and labels under the source's version (MemoryState), which every write below
raises in its own transaction, so a guess reads that one row while nothing changed
(`_recent_rows`); and the rows' features, which the rows determine (`_features_of_rows`).

The feedback app writes here (feedback -> recognizer): `memory_remember` when a correction is
stored, `memory_relabel` when its sender changes the answer, `memory_forget` when they take it
back or a reviewer rejects it; the predict and feedback APIs, through
recognizer.services.digit_stood_remember, `memory_remember_stood` when a page sends what stood.
Per source, the newest settings.MEMORY_SIZE corrections and MEMORY_STOOD drawings that stood of
the last settings.MEMORY_HOURS hours count. A source with a memory costs one read by key a
guess; a request without the memory hint (a stranger) none at all (recognizer.api).
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from recognizer.labels import NOT_A_DIGIT
from recognizer.models import MemoryState, RememberedCorrection

REASON = "your_correction"
REASON_STOOD = "your_drawing"  # the answer is the digit a drawing of theirs like it got, and they let stand
# A remembered drawing answers only a drawing for which the net itself gives its label at least
# this calibrated probability: a writer's 7 misread as 1 and corrected says nothing about their
# real 1s, which the net reads as 7 with far less. With the corrections alone (MEMORY_STOOD 0)
# the floor is PLAUSIBLE: from 0.05 to 0.30 of distance it kept every tuning writer from losing
# a drawing, where without it even 0.02 lost one writer 9. The drawings that stood guard those
# real 1s better (they lie nearer their own 1s that stood than the corrected 7), so beside them
# the floor is PLAUSIBLE_BESIDE_STOOD: on the tuning writers every floor from 0.05% down, at
# every distance from 0.08 to 0.5, left 2 of their 9 errors and cost no writer a drawing
# (bench/memory_replay.py --tune; docs/results.md).
PLAUSIBLE = 0.01
PLAUSIBLE_BESIDE_STOOD = 0.0005
# What a process keeps of the features it read, the least lately used going first: sources'
# stacked features (at most 150 x 512 bytes each) and single rows' (512 bytes): under 30 MB.
KEPT = 300
KEPT_ROWS = 20_000
# Rows past the window a write deletes, anyone's: more than any write adds (ten drawings that stood).
EXPIRED_BATCH = 100


@dataclass(frozen=True)
class Recalled:
    """What a drawing resembles: a correction (its sample's id, the label its sender gave) or a
    drawing whose answer stood (sample_id None, the digit that stood), and how far."""

    sample_id: int | None
    label: int
    distance: float

    @property
    def reason(self) -> str:
        return REASON_STOOD if self.sample_id is None else REASON


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
    model_input = np.ascontiguousarray(model_input, dtype=np.uint8).tobytes()
    with transaction.atomic():
        # The same drawing sent before as one that stood (the page's Undo brings a drawing back): the correction replaces it.
        RememberedCorrection.objects.filter(source=source, sample_id__isnull=True, model_input=model_input).delete()
        RememberedCorrection.objects.create(
            source=source,
            sample_id=sample_id,
            label=label,
            guess=guess,
            model_input=model_input,
            features=b"" if features is None else np.ascontiguousarray(features, dtype=np.float32).tobytes(),
            features_of="" if features is None else made_by,
        )
        _memory_written(source=source, stood=False)


def memory_remember_stood(
    *, source: str, inputs: np.ndarray, labels: list[int], made_by: str, make: Callable[[np.ndarray], np.ndarray]
) -> None:
    """Remember drawings of `source` whose answer it let stand: their 28x28 `inputs` (N, 28, 28)
    uint8, the digit each was answered and left with (`labels`), and their features, which
    `make` makes with the graph `made_by` (only once the source is found to have a correction:
    anyone else's cost nothing, and answer as the net does). Keeps the source's newest
    settings.MEMORY_STOOD of the window."""
    if not source or not memory_on() or not len(labels) or settings.MEMORY_STOOD <= 0:
        return
    table = RememberedCorrection._meta.db_table
    with connection.cursor() as cursor:  # plain SQL: building the ORM's query cost more than running it
        cursor.execute(f"SELECT 1 FROM {table} WHERE source = %s AND sample_id IS NOT NULL LIMIT 1", [source])
        if cursor.fetchone() is None:
            return
    features = np.ascontiguousarray(make(inputs), dtype=np.float32)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    values = [
        (source, int(label), int(label), np.ascontiguousarray(image, dtype=np.uint8).tobytes(), feature.tobytes(), made_by, now)
        for image, label, feature in zip(inputs, labels, features)
    ]
    with transaction.atomic(), connection.cursor() as cursor:  # one commit: on SQLite each costs a sync of the log
        # Plain SQL (SQLite 3.35+ and PostgreSQL return the ids, in the order given, as Django's bulk_create relies on): the ORM's insert cost as much as the rest of the write.
        cursor.execute(
            f"INSERT INTO {table} (source, label, guess, model_input, features, features_of, created_at) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(values))
            + " RETURNING id",
            [value for row in values for value in row],
        )
        ids = [row[0] for row in cursor.fetchall()]
        _memory_written(source=source, stood=True)
    with _kept_lock:  # this process has their features already: its next guess reads none of them
        for row_id, feature in zip(ids, features):
            _kept_rows[(made_by, row_id)] = feature


def _memory_written(*, source: str, stood: bool) -> None:
    """How every write of `source`'s corrections (or, `stood`, its drawings that stood) ends, in
    its transaction: the kind trimmed, the version raised, anyone's expired rows deleted."""
    _memory_trim(source=source, stood=stood)
    _memory_changed(source=source)
    _memory_purge_expired()


def _memory_trim(*, source: str, stood: bool) -> None:
    """Forget all but `source`'s newest MEMORY_STOOD drawings that stood (`stood`) or MEMORY_SIZE
    corrections of the last MEMORY_HOURS: one statement, as it runs with every write."""
    table, kind = RememberedCorrection._meta.db_table, "sample_id IS NULL" if stood else "sample_id IS NOT NULL"
    keep = max(int(settings.MEMORY_STOOD if stood else settings.MEMORY_SIZE), 0)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE source = %s AND {kind} AND id NOT IN ("
            f"SELECT id FROM {table} WHERE source = %s AND {kind} AND created_at >= %s ORDER BY created_at DESC, id DESC LIMIT %s)",
            [source, source, _window_start(), keep],
        )


def _memory_changed(*, source: str) -> None:
    """Raise `source`'s version (MemoryState), in the transaction that changes its rows: the
    processes that kept what they read of them read them again (_recent_rows). A version made
    anew starts from the clock, in microseconds: one deleted (_memory_purge_expired) and made
    again is never one a process kept, as a source writes far less than once a microsecond."""
    table = MemoryState._meta.db_table
    with connection.cursor() as cursor:  # SQLite and PostgreSQL both take this upsert
        cursor.execute(
            f"INSERT INTO {table} (source, version) VALUES (%s, %s) ON CONFLICT (source) DO UPDATE SET version = {table}.version + 1",
            [source, time.time_ns() // 1000],
        )


def _memory_purge_expired() -> None:
    """Delete up to EXPIRED_BATCH rows of anyone's that left the window (they answer nothing, and
    are drawings), and the versions of sources left with none; with every write, in its
    transaction, so the table holds about the window's rows whoever never comes back. Nothing a
    process keeps goes stale: a kept memory with such a row has outlived its `until` already. On
    PostgreSQL rows another writer is deleting are skipped, not waited for."""
    table, state = RememberedCorrection._meta.db_table, MemoryState._meta.db_table
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE created_at < %s ORDER BY created_at LIMIT %s{skip_locked}) RETURNING source",
            [_window_start(), EXPIRED_BATCH],
        )
        if sources := sorted({row[0] for row in cursor.fetchall()}):
            cursor.execute(
                f"DELETE FROM {state} WHERE source IN ({', '.join(['%s'] * len(sources))}) "
                f"AND NOT EXISTS (SELECT 1 FROM {table} WHERE {table}.source = {state}.source)",
                sources,
            )


def _window_start():
    """The oldest moment whose rows count (MEMORY_HOURS ago), as the database takes it."""
    return connection.ops.adapt_datetimefield_value(timezone.now() - timedelta(hours=float(settings.MEMORY_HOURS)))


def remembers(*, label: int, guess: int) -> bool:
    """Whether an answer with this label, to this guess, is remembered (the memory being on)."""
    return memory_on() and label != guess and label < NOT_A_DIGIT


def memory_relabel(*, source: str, sample_id: int, label: int, guess: int, model_input: np.ndarray) -> None:
    """The sender changed its answer: from now on the new label counts. A confirmation changed
    into a correction is remembered from now (its features made by each process when it first
    compares); a correction changed into the guess, or into "not a digit", is forgotten."""
    remembered = RememberedCorrection.objects.filter(sample_id=sample_id)
    with transaction.atomic():
        _memory_changed_of(remembered)
        if label == guess or label >= NOT_A_DIGIT:
            remembered.delete()
        elif not remembered.update(label=label):
            memory_remember(source=source, sample_id=sample_id, label=label, guess=guess, model_input=model_input, features=None, made_by="")


def memory_forget(*, sample_ids: Iterable[int] = (), sources: Iterable[str] = ()) -> None:
    """Forgotten at once, on every process (they all read here): answers their sender took back
    or a reviewer rejected (`sample_ids`), and everything of senders rejected whole (`sources`)."""
    forgotten = RememberedCorrection.objects.filter(Q(sample_id__in=list(sample_ids)) | Q(source__in=list(sources)))
    with transaction.atomic():
        _memory_changed_of(forgotten)
        forgotten.delete()


def _memory_changed_of(rows) -> None:
    """_memory_changed for the sources of `rows` (a RememberedCorrection query) that have a
    version: one without has never been kept by a process (_recent_rows)."""
    MemoryState.objects.filter(source__in=rows.values("source")).update(version=F("version") + 1)


def memory_recall(
    *,
    source: str | None,
    features: np.ndarray | None,
    probabilities: np.ndarray,
    made_by: str,
    remake: Callable[[np.ndarray], np.ndarray],
) -> Recalled | None:
    """The correction or drawing that stood of `source`'s memory nearest to a drawing's `features`
    (made by the graph `made_by`) among those whose label the net gives it at least the floor
    (plausible_floor; `probabilities`, calibrated), if it is within settings.MEMORY_DISTANCE;
    else None. `remake` makes features of (N, 28, 28) uint8 inputs with the same graph, for
    rows another graph read."""
    if not memory_on() or not source or features is None:
        return None
    floor = plausible_floor(stood=settings.MEMORY_STOOD)
    recent = _recent_rows(source=source)
    # recall's first rule, before any features are read: a drawing no remembered label could answer costs nothing more
    if not (probabilities[recent.labels] >= floor).any():
        return None
    # All the source's rows, whichever this drawing finds plausible: one stack per state of its memory.
    stored = _features_of_rows(ids=recent.ids, made_by=made_by, remake=remake, size=np.size(features))
    found = recall(
        features=features, probabilities=probabilities, stored=stored, labels=recent.labels, threshold=settings.MEMORY_DISTANCE, floor=floor, unit=True
    )
    if found is None:
        return None
    index, distance = found
    return Recalled(sample_id=recent.sample_ids[index], label=int(recent.labels[index]), distance=distance)


def plausible_floor(*, stood: int) -> float:
    """The least probability the net must give a remembered drawing's label: lower when the
    drawings that stood count (`stood` > 0), PLAUSIBLE with the corrections alone."""
    return PLAUSIBLE_BESIDE_STOOD if stood > 0 else PLAUSIBLE


def recall(
    *, features: np.ndarray, probabilities: np.ndarray, stored: np.ndarray, labels: list[int], threshold: float, floor: float, unit: bool = False
) -> tuple[int, float] | None:
    """The rule, for the site and for the benchmark that chose its numbers (bench/memory_replay.py):
    among the remembered drawings (`stored` features, in _recent_rows' order, and their
    `labels`: the label a person gave, or the digit that stood) whose label the net gives this
    drawing at least `floor` (`probabilities`), the nearest by cosine distance if it is within
    `threshold`: (its index, the distance); else None. `unit`: `stored` is unit_rows' already."""
    plausible = np.asarray(probabilities)[np.asarray(labels, dtype=np.intp)] >= floor
    if not plausible.any():
        return None
    # In float32, as the features are made: run on every guess of a sender with a memory, where float64 copies cost more than the sums.
    query = np.asarray(features, dtype=np.float32).ravel()
    query = query / max(float(np.sqrt(query @ query)), 1e-12)
    distances = 1.0 - (stored if unit else unit_rows(stored)) @ query
    distances[~plausible] = np.inf
    index = int(np.argmin(distances))  # the first of equals: a correction before one that stood, then the newest
    distance = float(distances[index])
    return (index, distance) if distance <= threshold else None


def unit_rows(stored: np.ndarray) -> np.ndarray:
    """Features (N, ...) as (N, size) float32 rows of unit length, a zero row staying zero: cosine
    similarity is then a dot product. A process keeps a source's rows so (_features_of_rows)."""
    rows = np.asarray(stored, dtype=np.float32).reshape(len(stored), -1)
    return rows / np.maximum(np.sqrt(np.einsum("ij,ij->i", rows, rows)), 1e-12)[:, None]


@dataclass(frozen=True)
class _Recent:
    """A source's remembered rows of the window, in _recent_rows' order: their samples' ids (None:
    one that stood), labels and row ids; as read at `version` of the source (MemoryState; None:
    it has none), and still the window's until `until` (the oldest row's leaving it)."""

    sample_ids: tuple[int | None, ...]
    labels: np.ndarray
    ids: tuple[int, ...]
    version: int | None
    until: datetime | None


def _recent_rows(*, source: str) -> _Recent:
    """The source's remembered drawings of the last MEMORY_HOURS: its corrections, then the
    drawings that stood (sample_id None), each newest first; so among equally near ones a
    correction answers (a drawing corrected after the page sent it as one that stood: the page's
    Undo brings it back). At most MEMORY_SIZE corrections and MEMORY_STOOD that stood, which
    every write trims to.

    Read on every guess from a browser with corrections, so a process keeps them under the
    source's version, which every write raises in its own transaction: a guess reads that one
    row by its key, and the rows themselves (through the index on (source, created_at)) only
    when the version moved, or the oldest left the window. The version is read first: rows read
    after it are at least as new, so rows kept under a version are never older than it. Plain
    SQL: building the ORM's query cost about as much as running it. The features stay in the
    table unless this process has not read them yet (_features_of_rows)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT version FROM {MemoryState._meta.db_table} WHERE source = %s", [source])
        version = (cursor.fetchone() or (None,))[0]
        with _kept_lock:
            kept = _kept_recent.get(source)
        if kept is not None and version is not None and kept.version == version and (kept.until is None or timezone.now() <= kept.until):
            return kept
        table, window = RememberedCorrection._meta.db_table, _window_start()
        cursor.execute(
            f"SELECT sample_id, label, id FROM {table} WHERE source = %s AND created_at >= %s "
            "ORDER BY sample_id IS NULL, created_at DESC, id DESC LIMIT %s",
            [source, window, int(settings.MEMORY_SIZE) + max(int(settings.MEMORY_STOOD), 0)],
        )
        rows = cursor.fetchall()
        oldest = None
        if rows:  # when the oldest leaves the window: one moment read, not one a row (each costs a parse on SQLite)
            cursor.execute(f"SELECT created_at FROM {table} WHERE source = %s AND created_at >= %s ORDER BY created_at LIMIT 1", [source, window])
            oldest = _aware(cursor.fetchone()[0])
    recent = _Recent(
        sample_ids=tuple(row[0] for row in rows),
        labels=np.fromiter((row[1] for row in rows), dtype=np.intp, count=len(rows)),
        ids=tuple(row[2] for row in rows),
        version=version,
        until=None if oldest is None else oldest + timedelta(hours=float(settings.MEMORY_HOURS)),
    )
    recent.labels.setflags(write=False)  # shared by every request of this process
    if version is not None:
        with _kept_lock:
            _kept_recent[source] = recent
            _kept_recent.move_to_end(source)
            while len(_kept_recent) > KEPT:
                _kept_recent.popitem(last=False)
    return recent


def _aware(moment: datetime) -> datetime:
    """A datetime as the database gave it, aware: SQLite's come naive, in UTC."""
    return moment.replace(tzinfo=dt_timezone.utc) if timezone.is_naive(moment) else moment


# (graph, remembered rows' ids) -> those rows' features by that graph, stacked (unit_rows); and (graph, row id)
# -> one row's, to stack a source's rows again when one is added; least lately used first. What a
# row determines: its input and the features stored with it never change (a relabel changes only
# the label, which the query reads), and a row's id is never given twice (SQLite's AUTOINCREMENT,
# PostgreSQL's identity). So every process may keep them and still answers as the database says:
# a row taken back is no longer in the query, and a new one makes a new key. A source's ids
# change when it corrects, changes, takes back, or sends drawings that stood.
_kept: "OrderedDict[tuple[str, tuple[int, ...]], np.ndarray]" = OrderedDict()
_kept_rows: "OrderedDict[tuple[str, int], np.ndarray]" = OrderedDict()
# source -> its rows as last read, under its version (_recent_rows); least lately used first.
_kept_recent: "OrderedDict[str, _Recent]" = OrderedDict()
_kept_lock = threading.Lock()


def memory_kept_forget() -> None:
    """Drop what this process keeps. For tests: a test's rolled-back rows give their ids again,
    which a database in service never does."""
    with _kept_lock:
        _kept.clear()
        _kept_rows.clear()
        _kept_recent.clear()


def _features_of_rows(*, ids: tuple[int, ...], made_by: str, remake: Callable[[np.ndarray], np.ndarray], size: int) -> np.ndarray:
    """The features the graph `made_by` gives the remembered rows `ids`, as unit_rows (len(ids),
    size), kept by this process once read: each row's stored features when this graph made them, else made
    again from its 28x28 input by `remake` (another version or variant read it). Only rows this
    process has not read yet are read. A row taken back since the query gets a zero vector,
    never near."""
    key = (made_by, ids)
    with _kept_lock:
        if (kept := _kept.get(key)) is not None:
            _kept.move_to_end(key)
            return kept
        found = {row_id: row for row_id in ids if (row := _kept_rows.get((made_by, row_id))) is not None}
    missing = [row_id for row_id in ids if row_id not in found]
    read = []
    if missing:
        with connection.cursor() as cursor:  # plain SQL, as _recent_rows
            cursor.execute(
                f"SELECT id, model_input, features, features_of FROM {RememberedCorrection._meta.db_table} "
                f"WHERE id IN ({', '.join(['%s'] * len(missing))})",
                missing,
            )
            read = cursor.fetchall()
    new = {row_id: np.frombuffer(bytes(features), dtype=np.float32) for row_id, _, features, of in read if of == made_by and features}
    inputs = {row_id: model_input for row_id, model_input, _, _ in read if row_id not in new}
    if inputs:
        made = remake(np.stack([np.frombuffer(bytes(model_input), dtype=np.uint8).reshape(28, 28) for model_input in inputs.values()]))
        new.update(zip(inputs, made))
    found.update(new)
    stored = unit_rows(np.stack([np.asarray(found[row_id], dtype=np.float32) if row_id in found else np.zeros(size, dtype=np.float32) for row_id in ids]))
    with _kept_lock:
        for row_id, features in new.items():
            _kept_rows[(made_by, row_id)] = np.asarray(features, dtype=np.float32)
        while len(_kept_rows) > KEPT_ROWS:
            _kept_rows.popitem(last=False)
        if len(found) == len(ids):  # one taken back in between is not kept: the next query no longer has it
            stored.setflags(write=False)  # shared by every request of this process
            _kept[key] = stored
            while len(_kept) > KEPT:
                _kept.popitem(last=False)
    return stored
