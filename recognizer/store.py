"""The store of models: every published version in the database, which one is active, and
this machine's copies of them.

The database is the store of record (recognizer.models.ModelVersion): every published model's
bytes (a model file, recognizer.modelfile) with their SHA-256, and which one is active (at most
one; with none, the shipped model, settings.SHIPPED_MODEL, serves). A web machine needs nothing
but the database (and the cache) to serve the active model; which model this process serves,
and when it checks again, is recognizer.serving's.

Each machine keeps a local copy of the versions it loaded under settings.MODEL_DIR:
    versions/<version>.safetensors   a published model, never changed after writing
    .<name>.<random>.tmp             a file being written; left behind only by a killed process
A copy is served only if its SHA-256 is the one the database records (`version_load`, once per
version a process loads); one that is not is fetched again. Bytes in the database that do not
match their own recorded SHA-256 are never activated, listed or served. The shipped model is
part of the repository and is not checked against the database.

`model_activate` writes the new active version to the cache when one is shared
(DIGITSITE_CACHE_URL), so every process's check (`active_version`) costs one Redis GET; without
a shared cache it costs one small query.

Publishing and activating check that the model loads (recognizer.modelfile's checks) but do not
prepare it for serving: the process that serves it does that on its first guess.
"""

import hashlib
import logging
import re
import time
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from digitsite.files import write_atomically
from recognizer.modelfile import FILE_MODE, LoadedModel, ModelUnavailable, model_from_bytes, model_to_bytes
from recognizer.net import DigitNet

logger = logging.getLogger(__name__)

VERSIONS = "versions"
_NAME = re.compile(r"^[\w.-]{1,100}$")  # a version name: one safe path component

# The hint outlives no activation (model_activate rewrites it); the timeout only bounds how long
# a change made behind the store's back (a restored database) goes unseen.
HINT_TIMEOUT_S = 30


def model_dir() -> Path:
    return Path(settings.MODEL_DIR)


def version_path(version: str) -> Path:
    """Where this machine keeps its copy of `version` (ModelUnavailable for a name that is not a version)."""
    if not _NAME.match(version):
        raise ModelUnavailable(f"not a model version: {version!r}")
    return model_dir() / VERSIONS / f"{version}.safetensors"


def shipped_model() -> LoadedModel:
    """The model that ships with the site: it serves while no version is active."""
    return _shipped()[1]


def _shipped() -> tuple[bytes, LoadedModel]:
    path = Path(settings.SHIPPED_MODEL)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelUnavailable(f"model file {path} cannot be read: {error.strerror or error}") from error
    return data, model_from_bytes(data, source=str(path))


def model_sha256(*, data: bytes) -> str:
    """The hex SHA-256 of a model file's bytes: what ModelVersion.sha256 records."""
    return hashlib.sha256(data).hexdigest()


def _checked_row(*, version: str, data: bytes, sha256: str, source: str) -> LoadedModel:
    """A version's bytes from the database -> the checked model. ModelUnavailable when they do
    not load (recognizer.modelfile's checks) or do not match the SHA-256 recorded with them."""
    loaded = model_from_bytes(data, source=source)
    if (digest := model_sha256(data=data)) != sha256:
        raise ModelUnavailable(
            f"model version {version} in the database does not match its recorded SHA-256 "
            f"(recorded {sha256 or 'none'}, its bytes hash to {digest}): it is not served"
        )
    return loaded


def model_publish(*, net: DigitNet, metadata: dict[str, object], activate: bool) -> Path:
    """Keep the model as a version in the database (and a local copy); make it the active one
    if `activate`. Returns the local copy's path."""
    from recognizer.models import ModelVersion

    version = str(metadata["version"])
    path = version_path(version)
    data = model_to_bytes(net=net, metadata=metadata)
    loaded = model_from_bytes(data, source=f"version {version}")  # never keep a model that cannot load
    write_atomically(path, data, mode=FILE_MODE)
    ModelVersion.objects.create(version=version, data=data, sha256=model_sha256(data=data), metadata=loaded.metadata)
    if activate:
        model_activate(version=version)
    return path


@transaction.atomic
def model_activate(*, version: str) -> LoadedModel:
    """Make a kept version (or the shipped model) the active one, for every server process on
    every machine. The shipped model gets its row the first time it is activated."""
    from recognizer.models import ModelVersion

    version_path(version)  # refuses a name that is not a version
    row = ModelVersion.objects.select_for_update().filter(version=version).first()
    if row is None:
        data, shipped = _shipped()
        if shipped.version != version:
            raise ModelUnavailable(f"no model version {version!r} in the database")
        row = ModelVersion.objects.create(version=version, data=data, sha256=model_sha256(data=data), metadata=shipped.metadata)
    # Never activate one that cannot load, or whose bytes are not those recorded.
    loaded = _checked_row(version=version, data=bytes(row.data), sha256=row.sha256, source=f"version {version}")
    ModelVersion.objects.filter(active=True).exclude(pk=row.pk).update(active=False)
    ModelVersion.objects.filter(pk=row.pk).update(active=True, activated_at=timezone.now())
    transaction.on_commit(lambda: _activated(loaded))
    logger.info("model %s is now active", version)
    return loaded


# Sent once an activation has committed, with `model`: the LoadedModel now active.
model_activated = Signal()


def _activated(loaded: LoadedModel) -> None:
    try:
        cache.set(active_version_hint_key(), loaded.version, HINT_TIMEOUT_S)
    except Exception as error:  # a cache that is down: the other processes read the database
        logger.warning("could not write the active version to the cache: %s", error)
    # This process serves it from now, without loading it again (recognizer.serving listens).
    model_activated.send(sender=LoadedModel, model=loaded)


def model_versions() -> list[LoadedModel]:
    """The shipped model and every kept version that loads, oldest first."""
    from recognizer.models import ModelVersion

    found: dict[str, LoadedModel] = {}
    try:
        shipped = shipped_model()
        found[shipped.version] = shipped
    except ModelUnavailable as error:
        logger.warning("%s", error)
    for row in ModelVersion.objects.all():
        try:
            source = f"version {row.version}"
            found.setdefault(row.version, _checked_row(version=row.version, data=bytes(row.data), sha256=row.sha256, source=source))
        except ModelUnavailable as error:
            logger.warning("%s", error)
    return sorted(found.values(), key=lambda m: m.metadata.get("trained_at", ""))


def version_load(*, version: str) -> LoadedModel:
    """A kept version: this machine's copy if its SHA-256 is the one the database records, else
    fetched from the database and copied again (a missing, damaged or altered copy). Called
    when a process loads a version, not per guess: it costs one small query, and the fetch when
    the copy is not the published one. ModelUnavailable when the version is not in the database
    or its bytes there cannot be used (they do not load, or do not match their own SHA-256);
    DatabaseError when the database cannot answer (the copy cannot be checked, so it is not
    served)."""
    from recognizer.models import ModelVersion

    path = version_path(version)
    recorded = ModelVersion.objects.filter(version=version).values_list("sha256", flat=True).first()
    if recorded is None:
        raise ModelUnavailable(f"model version {version} is not in the database")
    try:
        copy = path.read_bytes()
    except OSError:
        copy = None  # no copy yet, or an unreadable one: the database has the bytes
    if copy is not None:
        if (digest := model_sha256(data=copy)) == recorded:
            return model_from_bytes(copy, source=str(path))
        logger.warning(
            "the local copy of model version %s (%s) has SHA-256 %s, the database records %s: fetching it again",
            version, path, digest, recorded or "none",
        )  # fmt: skip
    row = ModelVersion.objects.filter(version=version).values_list("data", "sha256").first()
    if row is None:
        raise ModelUnavailable(f"model version {version} is not in the database")
    data, sha256 = bytes(row[0]), row[1]
    loaded = _checked_row(version=version, data=data, sha256=sha256, source=f"version {version} in the database")
    try:
        write_atomically(path, data, mode=FILE_MODE)
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
