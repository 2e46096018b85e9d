"""The model this process serves: the active version, kept in memory, switched without a restart.

Each process checks which version is active (recognizer.store.active_version) at most once
every settings.MODEL_CHECK_S (1 s): one thread checks while the others go on serving the model
they have. A new version is loaded from this machine's copy once its SHA-256 matches the
database's, else fetched from the database (recognizer.store.version_load): its serving form
(ONNX graphs; this module and what it imports use no torch). One that cannot load, or whose
bytes in the database are not those recorded, or that has no serving form yet, is never served: the last good
model keeps serving and `active_model_problem` says why (health: `degraded`). So a promotion
or a rollback serves on every machine within about a second.

When the database cannot be read (nor, so, a version's copy checked), guessing (which needs no
database) goes on with the model loaded, or the shipped model if none was, and health says so.

The serving net (ONNX Runtime sessions, recognizer.servingform.ServedModel.serving_net) is made
by the first guess after a switch, not here: a process that only asks which model is active
(the admin) makes none. gunicorn.conf.py makes it in each worker before its first request.
"""

import contextlib
import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from recognizer.servingform import ModelUnavailable, ServedModel, ServingFormMissing
from recognizer.store import active_version, model_activated, shipped_model, version_load

logger = logging.getLogger(__name__)


def _savepoint():
    return transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()


class _Active:
    """This process's model: what it serves, and when it next checks the active version."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget the model: the next call loads the active one again."""
        self.key: str | None = None  # the version served ("": the shipped model)
        self.model: ServedModel | None = None
        self.failed: str | None = None  # a version that cannot load is reported once, not per check
        self.error: str | None = None
        self.next_check = 0.0

    def get(self) -> ServedModel:
        model = self.model
        if model is not None and time.monotonic() < self.next_check:
            return model
        # One thread checks; the others keep serving the model they have meanwhile.
        if not self.lock.acquire(blocking=model is None):
            return model
        try:
            if self.model is None or time.monotonic() >= self.next_check:
                self._check()
                self.check_later()
            if self.model is None:
                raise ModelUnavailable(self.error or "no model")
            return self.model
        finally:
            self.lock.release()

    def check_later(self) -> None:
        self.next_check = time.monotonic() + float(getattr(settings, "MODEL_CHECK_S", 1.0))

    def _check(self) -> None:
        # Inside a caller's transaction each read runs in its own savepoint: a failed query must
        # not break that transaction (on PostgreSQL every later query in it would fail too).
        # Outside one no transaction is opened: SQLite's IMMEDIATE mode would wait on a writer.
        try:
            with _savepoint():
                version = active_version()
        except DatabaseError as error:
            self._database_down(problem=f"cannot read the active model version from the database: {error}")
            return
        key = version or ""  # "": the shipped model
        if self.model is not None and key == self.key:
            self.error = None
            return
        if key == self.failed:
            return  # still the version that cannot load; the last good model serves
        try:
            # A version's local copy is checked against the database's SHA-256 here, once per
            # version loaded (recognizer.store.version_load), never per guess.
            with _savepoint():
                loaded = version_load(version=version) if version else shipped_model()
        except ServingFormMissing as error:  # asked again at the next check: the worker is building it
            if self.error != str(error):
                logger.warning("%s", error)
            self.error = str(error)
            return
        except ModelUnavailable as error:
            self.failed, self.error = key, str(error)
            logger.error("%s", error)
            return
        except DatabaseError as error:  # tried again at the next check, unlike a version that cannot load
            self._database_down(problem=f"cannot check model version {version} against the database: {error}")
            return
        self.use(key, loaded)

    def _database_down(self, *, problem: str) -> None:
        # The database is down or not migrated: guessing needs no database, so keep serving
        # (the shipped model if nothing was loaded yet) and say so in health.
        before = self.error
        self.error = problem.strip()
        if self.model is None:
            try:
                self.model, self.key = shipped_model(), ""
                self.error += "; serving the shipped model"
            except ModelUnavailable as shipped_error:
                self.error = str(shipped_error)
        if not (before or "").startswith(self.error.split(";")[0]):
            logger.warning("%s", self.error)  # once, not every second

    def use(self, key: str, loaded: ServedModel) -> None:
        self.key, self.model, self.failed, self.error = key, loaded, None, None
        logger.info("serving model %s", loaded.version)


_active = _Active()


def active_model() -> ServedModel:
    """The active model, loaded once per process and reloaded when another version is activated."""
    return _active.get()


def active_model_problem() -> str | None:
    """Why the active model is not the one serving, or why the one serving cannot guess; None
    when all is well. (Guessing in 32-bit floats is well: health says so beside, as
    the model's precision and its note.)"""
    try:
        model = active_model()
    except ModelUnavailable as error:
        return str(error)
    return _active.error or model.serving_problem


def active_model_set(*, model: ServedModel, **kwargs) -> None:
    """Serve `model` from now: called when recognizer.store.model_activate's activation has
    committed (its `model_activated` signal), so the process that activated a version does not
    load it again."""
    with _active.lock:
        _active.use(model.version, model)
        _active.check_later()


model_activated.connect(active_model_set, dispatch_uid="recognizer.serving.active_model_set")


def active_model_forget() -> None:
    """Drop this process's model (tests switch MODEL_DIR between them; a new process starts so)."""
    with _active.lock:
        _active.reset()
