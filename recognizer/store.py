"""The store of models: every published version in the database, which one is active, and
this machine's copies of them.

The database is the store of record (recognizer.models.ModelVersion): every published model's
bytes (a model file, recognizer.modelfile) with their SHA-256, and which one is active (at most
one; with none, the shipped model, settings.SHIPPED_MODEL, serves). A web machine needs nothing
but the database (and the cache) to serve the active model; which model this process serves,
and when it checks again, is recognizer.serving's.

Web processes serve a version's serving form (recognizer.servingform: ONNX graphs, no torch),
built once when it is published (recognizer.publishing) and kept in its row beside the weights,
with its own SHA-256. Each machine keeps local copies under settings.MODEL_DIR:
    versions/<version>.safetensors   a published model's weights (training machines)
    versions/<version>.serving.zip   its serving form (web machines)
    .<name>.<random>.tmp             a file being written; left behind only by a killed process
A copy is served only if its SHA-256 is the one the database records (`version_load`, once per
version a process loads); one that is not is fetched again. Bytes in the database that do not
match their own recorded SHA-256 are never activated, listed or served, and a serving form is
served only for the weights it names. The shipped model and its serving form are part of the
repository (settings.SHIPPED_MODEL, and digitnet.serving.zip beside it) and are not checked
against the database, but the form must name the shipped weights' SHA-256.

This module imports no torch: web processes use it. A version without a serving form (published
before there were any) is activated all the same, but served only once the worker or
`manage.py build_serving_forms` has built its form; until then the last good model serves.

`model_activate` writes the new active version to the cache when one is shared
(DIGITSITE_CACHE_URL), so every process's check (`active_version`) costs one Redis GET; without
a shared cache it costs one small query.

Activating reads the serving form but makes no ONNX Runtime session: the process that serves a
model does that on its first guess (recognizer.servingform.ServedModel.serving_net).
"""

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from digitsite.files import write_atomically
from recognizer.servingform import (
    FILE_MODE,
    ModelUnavailable,
    ServedModel,
    ServingFormMissing,
    metadata_describe,
    served_model_from_bytes,
    serving_form_manifest,
)

logger = logging.getLogger(__name__)

VERSIONS = "versions"
_NAME = re.compile(r"^[\w.-]{1,100}$")  # a version name: one safe path component

# The hint outlives no activation (model_activate rewrites it); the timeout only bounds how long
# a change made behind the store's back (a restored database) goes unseen.
HINT_TIMEOUT_S = 30


def model_dir() -> Path:
    return Path(settings.MODEL_DIR)


def version_path(version: str, *, suffix: str = ".safetensors") -> Path:
    """Where this machine keeps its copy of `version`'s weights (or, with suffix ".serving.zip",
    its serving form). ModelUnavailable for a name that is not a version."""
    if not _NAME.match(version):
        raise ModelUnavailable(f"not a model version: {version!r}")
    return model_dir() / VERSIONS / f"{version}{suffix}"


SERVING_SUFFIX = ".serving.zip"


def shipped_form_path() -> Path:
    """The shipped model's serving form: beside its weights (`manage.py build_serving_forms --shipped` rebuilds it)."""
    path = Path(settings.SHIPPED_MODEL)
    return path.with_name(path.name.removesuffix(".safetensors") + SERVING_SUFFIX)


def shipped_model() -> ServedModel:
    """The model that ships with the site: it serves while no version is active."""
    data, form = _shipped()
    return served_model_from_bytes(form, source=str(shipped_form_path()))


def shipped_version() -> str:
    """The shipped model's version, from its serving form's manifest (no sessions made)."""
    path = shipped_form_path()
    return serving_form_manifest(_read(path), source=str(path))["metadata"]["version"]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ModelUnavailable(f"model file {path} cannot be read: {error.strerror or error}") from error


def _shipped() -> tuple[bytes, bytes]:
    """The shipped weights and serving form, checked to belong together."""
    data, form_path = _read(Path(settings.SHIPPED_MODEL)), shipped_form_path()
    form = _read(form_path)
    _form_of(form, weights_sha256=model_sha256(data=data), source=str(form_path))
    return data, form


def model_sha256(*, data: bytes) -> str:
    """The hex SHA-256 of a model file's (or a serving form's) bytes: what ModelVersion records."""
    return hashlib.sha256(data).hexdigest()


def _form_of(form: bytes, *, weights_sha256: str, source: str) -> dict:
    """A serving form's manifest, once it is known to be the form of the weights with `weights_sha256`."""
    manifest = serving_form_manifest(form, source=source)
    if manifest.get("model_sha256") != weights_sha256:
        raise ModelUnavailable(
            f"serving form {source} was built from other weights (SHA-256 {manifest.get('model_sha256')}, "
            f"the model's is {weights_sha256}): rebuild it with `manage.py build_serving_forms`"
        )
    return manifest


def _checked_form(*, version: str, form: bytes, serving_sha256: str, weights_sha256: str, source: str) -> ServedModel:
    """A version's serving form from the database -> the model to serve. ModelUnavailable when
    it does not match the SHA-256 recorded with it, or is the form of other weights."""
    if (digest := model_sha256(data=form)) != serving_sha256:
        raise ModelUnavailable(
            f"the serving form of model version {version} in the database does not match its recorded SHA-256 "
            f"(recorded {serving_sha256 or 'none'}, its bytes hash to {digest}): it is not served"
        )
    _form_of(form, weights_sha256=weights_sha256, source=source)
    return served_model_from_bytes(form, source=source)


def _check_weights(*, version: str, data: bytes, sha256: str) -> None:
    if (digest := model_sha256(data=data)) != sha256:
        raise ModelUnavailable(
            f"model version {version} in the database does not match its recorded SHA-256 "
            f"(recorded {sha256 or 'none'}, its bytes hash to {digest}): it is not served"
        )


def _missing(version: str) -> ServingFormMissing:
    return ServingFormMissing(
        f"model version {version} has no serving form yet: the training worker builds it, "
        f"or run `manage.py build_serving_forms`; the last good model serves meanwhile"
    )


@transaction.atomic
def model_activate(*, version: str) -> ServedModel | None:
    """Make a kept version (or the shipped model) the active one, for every server process on
    every machine. The shipped model gets its row the first time it is activated. Returns the
    model to serve, or None when the version has no serving form yet (then the last good model
    serves until the worker has built it)."""
    from recognizer.models import ModelVersion

    version_path(version)  # refuses a name that is not a version
    row = ModelVersion.objects.select_for_update().filter(version=version).first()
    if row is None:
        data, form = _shipped()
        shipped = served_model_from_bytes(form, source=str(shipped_form_path()))
        if shipped.version != version:
            raise ModelUnavailable(f"no model version {version!r} in the database")
        row = ModelVersion.objects.create(
            version=version, data=data, sha256=model_sha256(data=data), metadata=shipped.metadata,
            serving_form=form, serving_sha256=model_sha256(data=form),
        )  # fmt: skip
    # Never activate one whose bytes are not those recorded, or whose serving form is not its own.
    _check_weights(version=version, data=bytes(row.data), sha256=row.sha256)
    served = None
    if row.serving_form is not None:
        served = _checked_form(
            version=version, form=bytes(row.serving_form), serving_sha256=row.serving_sha256, weights_sha256=row.sha256, source=f"version {version}"
        )  # fmt: skip
    ModelVersion.objects.filter(active=True).exclude(pk=row.pk).update(active=False)
    ModelVersion.objects.filter(pk=row.pk).update(active=True, activated_at=timezone.now())
    transaction.on_commit(lambda: _activated(version, served))
    if served is None:
        logger.warning("%s", _missing(version))
        transaction.on_commit(lambda: serving_form_wanted.send(sender=None, version=version))
    logger.info("model %s is now active", version)
    return served


# Sent once an activation has committed, with `model`: the ServedModel now active (not sent for a
# version whose serving form is not built yet).
model_activated = Signal()

# Sent once the activation of a version without a serving form has committed, with `version`:
# recognizer.tasks queues its build for the worker (a web request never builds one).
serving_form_wanted = Signal()


def _activated(version: str, served: ServedModel | None) -> None:
    try:
        cache.set(active_version_hint_key(), version, HINT_TIMEOUT_S)
    except Exception as error:  # a cache that is down: the other processes read the database
        logger.warning("could not write the active version to the cache: %s", error)
    # This process serves it from now, without loading it again (recognizer.serving listens).
    if served is not None:
        model_activated.send(sender=ServedModel, model=served)


@dataclass(frozen=True)
class KeptVersion:
    """A version as listed: its metadata (from the row, nothing loaded), and whether it can serve yet."""

    version: str
    metadata: dict
    has_serving_form: bool

    def describe(self) -> dict:
        return metadata_describe({**self.metadata, "version": self.version})


def model_versions() -> list[KeptVersion]:
    """The shipped model and every kept version whose bytes are those recorded, oldest first."""
    from recognizer.models import ModelVersion

    found: dict[str, KeptVersion] = {}
    try:
        shipped = shipped_model()
        found[shipped.version] = KeptVersion(shipped.version, shipped.metadata, True)
    except ModelUnavailable as error:
        logger.warning("%s", error)
    for row in ModelVersion.objects.all():
        try:
            _check_weights(version=row.version, data=bytes(row.data), sha256=row.sha256)
            found.setdefault(row.version, KeptVersion(row.version, row.metadata, row.serving_form is not None))
        except ModelUnavailable as error:
            logger.warning("%s", error)
    return sorted(found.values(), key=lambda m: str(m.metadata.get("trained_at", "")))


def version_load(*, version: str) -> ServedModel:
    """A kept version's serving form: this machine's copy if its SHA-256 is the one the database
    records, else fetched from the database and copied again (a missing, damaged or altered
    copy). Called when a process loads a version, not per guess: it costs one small query, and
    the fetch when the copy is not the published one. ServingFormMissing when the version has
    no serving form yet; ModelUnavailable when it is not in the database or its form there
    cannot be used (it does not match its SHA-256, or belongs to other weights); DatabaseError
    when the database cannot answer (the copy cannot be checked, so it is not served)."""
    from recognizer.models import ModelVersion

    path = version_path(version, suffix=SERVING_SUFFIX)
    recorded = ModelVersion.objects.filter(version=version).values_list("serving_sha256", "sha256").first()
    if recorded is None:
        raise ModelUnavailable(f"model version {version} is not in the database")
    serving_sha256, weights_sha256 = recorded
    if not serving_sha256:
        raise _missing(version)
    try:
        copy = path.read_bytes()
    except OSError:
        copy = None  # no copy yet, or an unreadable one: the database has the bytes
    if copy is not None:
        if (digest := model_sha256(data=copy)) == serving_sha256:
            _form_of(copy, weights_sha256=weights_sha256, source=str(path))
            return served_model_from_bytes(copy, source=str(path))
        logger.warning(
            "the local copy of model version %s's serving form (%s) has SHA-256 %s, the database records %s: fetching it again",
            version, path, digest, serving_sha256,
        )  # fmt: skip
    row = ModelVersion.objects.filter(version=version).values_list("serving_form", "serving_sha256", "sha256").first()
    if row is None or row[0] is None:
        raise ModelUnavailable(f"model version {version} is not in the database") if row is None else _missing(version)
    form = bytes(row[0])
    loaded = _checked_form(version=version, form=form, serving_sha256=row[1], weights_sha256=row[2], source=f"version {version} in the database")
    try:
        write_atomically(path, form, mode=FILE_MODE)
    except OSError as error:  # serving needs no copy; a restart would fetch it again
        logger.warning("could not keep a local copy of model %s in %s: %s", version, path.parent, error.strerror or error)
    return loaded


def active_version() -> str | None:
    """The active version's name (None: the shipped model), from the cache when there is one
    shared by every process, else from the database. Raises DatabaseError when it must ask a
    database that cannot answer."""
    from recognizer.models import ModelVersion

    key = active_version_hint_key()
    if settings.CACHE_URL:
        try:
            hint = cache.get(key)
        except Exception as error:
            logger.warning("cache unavailable, asking the database: %s", error)
            hint = None
        if hint is not None:
            return hint or None
    version = ModelVersion.objects.filter(active=True).values_list("version", flat=True).first()
    if settings.CACHE_URL:
        try:
            cache.set(key, version or "", HINT_TIMEOUT_S)
        except Exception:
            pass
    return version


def active_version_hint_key() -> str:
    # Keyed by database, so sites (or test databases) sharing one Redis do not read each other's.
    db = settings.DATABASES["default"]
    return f"recognizer:active-version:{db.get('HOST', '')}:{db.get('PORT', '')}:{db['NAME']}"


# -- leftovers ------------------------------------------------------------------------------


def temp_files_clean(*, older_than_s: float = 60.0) -> list[Path]:
    """Remove half-written files that a killed process left behind. A write takes milliseconds,
    so a temporary file older than `older_than_s` belongs to no live writer."""
    removed = []
    for path in model_dir().rglob(".*.tmp"):
        try:
            if time.time() - path.stat().st_mtime >= older_than_s:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            pass
    return removed
