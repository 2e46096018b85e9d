"""Models: the one place that saves, publishes, activates and loads them.

The database is the store of record (recognizer.models.ModelVersion): every published model's
bytes, and which one is active (at most one; with none, the shipped model, settings.SHIPPED_MODEL,
serves). A web machine needs nothing but the database (and the cache) to serve the active model.

Each process keeps a local copy of the versions it loaded under settings.MODEL_DIR:
    versions/<version>.safetensors   a published model, never changed after writing
    runs/<run>/<name>.safetensors    a training run's checkpoints (latest and best epoch)
    .<name>.<random>.tmp             a file being written; left behind only by a killed process

Each process checks which version is active at most once every settings.MODEL_CHECK_S (1 s):
through the cache when one is shared (DIGITSITE_CACHE_URL: `model_activate` writes the new
version there, so a check costs one Redis GET), else with one small query. A new version is
loaded from the local copy, or fetched from the database and copied; one that cannot load is
never served: the last good model keeps serving and health says `degraded`. So a promotion or a
rollback serves on every machine within about a second, without a restart.

Each file holds the weights and their metadata (version, trained at, MNIST test accuracy, net
width, ...) in safetensors' header, so a file is always complete and self-describing, and nothing
is unpickled. Files are written to a temporary file in the same folder, then `os.replace`.
"""

import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from digitsite.files import write_atomically
from recognizer.net import DigitNet
from recognizer.onnx_net import OnnxNet

logger = logging.getLogger(__name__)

VERSIONS = "versions"
FILE_MODE = 0o644  # model files hold no secret, and every server process reads them
RUNS = "runs"
_VERSION = re.compile(r"^[\w.-]{1,100}$")


class ModelUnavailable(RuntimeError):
    """No usable model file: missing, corrupt, or not a DigitNet."""


@dataclass(frozen=True)
class LoadedModel:
    net: DigitNet
    metadata: dict[str, str]
    fast: OnnxNet  # what serving runs: the same function as net, about twice as fast

    @property
    def version(self) -> str:
        return self.metadata["version"]

    @property
    def temperature(self) -> float:
        """Divides the logits before softmax (calibration); 1 for a model made without it."""
        return float(self.metadata.get("temperature", 1.0))

    def describe(self) -> dict:
        """Metadata with numbers as numbers, for the API and the admin."""
        described: dict = dict(self.metadata)
        for key, value in self.metadata.items():
            try:
                described[key] = json.loads(value)
            except ValueError:
                pass
        described["version"] = self.version  # a version like "1" stays a string
        return described


def model_dir() -> Path:
    return Path(settings.MODEL_DIR)


def version_path(version: str) -> Path:
    if not _VERSION.match(version):
        raise ModelUnavailable(f"not a model version: {version!r}")
    return model_dir() / VERSIONS / f"{version}.safetensors"


# -- files --------------------------------------------------------------------------------


def model_to_bytes(*, net: DigitNet, metadata: dict[str, object]) -> bytes:
    header = {key: value if isinstance(value, str) else json.dumps(value) for key, value in metadata.items()}
    header["width"] = str(net.width)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in net.state_dict().items()}
    return safetensors_save(tensors, metadata=header)


def model_from_bytes(data: bytes, *, source: str) -> LoadedModel:
    try:
        header_size = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
        tensors = safetensors_load(data)
        net = DigitNet(width=int(metadata["width"]))
        net.load_state_dict(tensors, strict=True)
    except Exception as error:  # truncated, not safetensors, wrong shapes, missing keys...
        raise ModelUnavailable(f"model file {source} is not a usable DigitNet: {error}") from error
    if "version" not in metadata:
        raise ModelUnavailable(f"model file {source} has no version in its metadata")
    try:
        temperature = float(metadata.get("temperature", 1.0))
    except ValueError:
        temperature = math.nan
    if not 0 < temperature < math.inf:
        raise ModelUnavailable(f"model file {source} has an unusable temperature: {metadata['temperature']!r}")
    if bad := [name for name, tensor in tensors.items() if tensor.is_floating_point() and not tensor.isfinite().all()]:
        raise ModelUnavailable(f"model file {source} has weights that are not finite numbers (NaN or inf) in {', '.join(bad)}")
    net.eval()
    with torch.inference_mode():
        # Finite weights can still overflow (random bytes make numbers near 1e38): one blank
        # image through the net catches that before a request would.
        if not torch.isfinite(net(torch.zeros(1, 1, 28, 28))).all():
            raise ModelUnavailable(f"model file {source} gives outputs that are not finite numbers")
    try:
        fast = OnnxNet(net)
    except Exception as error:  # a net that ran above exports; this is the last guard
        raise ModelUnavailable(f"model file {source} could not be prepared for serving: {error}") from error
    return LoadedModel(net=net, metadata=metadata, fast=fast)


def model_load(*, path: Path) -> LoadedModel:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ModelUnavailable(f"model file {path} cannot be read: {error.strerror or error}") from error
    return model_from_bytes(data, source=str(path))


def model_save(*, net: DigitNet, metadata: dict[str, object], path: Path) -> None:
    write_atomically(Path(path), model_to_bytes(net=net, metadata=metadata), mode=FILE_MODE)


def model_publish(*, net: DigitNet, metadata: dict[str, object], activate: bool) -> Path:
    """Keep the model as a version in the database (and a local copy); make it the active one
    if `activate`. Returns the local copy's path."""
    from recognizer.models import ModelVersion

    version = str(metadata["version"])
    path = version_path(version)
    data = model_to_bytes(net=net, metadata=metadata)
    loaded = model_from_bytes(data, source=f"version {version}")  # never keep a model that cannot load
    write_atomically(path, data, mode=FILE_MODE)
    ModelVersion.objects.create(version=version, data=data, metadata=loaded.metadata)
    if activate:
        model_activate(version=version)
    return path


def _shipped() -> tuple[bytes, LoadedModel]:
    path = Path(settings.SHIPPED_MODEL)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelUnavailable(f"model file {path} cannot be read: {error.strerror or error}") from error
    return data, model_from_bytes(data, source=str(path))


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
        row = ModelVersion.objects.create(version=version, data=data, metadata=shipped.metadata)
    loaded = model_from_bytes(bytes(row.data), source=f"version {version}")  # never activate one that cannot load
    ModelVersion.objects.filter(active=True).exclude(pk=row.pk).update(active=False)
    ModelVersion.objects.filter(pk=row.pk).update(active=True, activated_at=timezone.now())
    transaction.on_commit(lambda: _activated(version, loaded))
    logger.info("model %s is now active", version)
    return loaded


def _activated(version: str, loaded: LoadedModel) -> None:
    try:
        cache.set(_hint_key(), version, HINT_TIMEOUT_S)
    except Exception as error:  # a cache that is down: the other processes read the database
        logger.warning("could not write the active version to the cache: %s", error)
    _active.use(version, loaded)
    _active.next_check = time.monotonic() + float(getattr(settings, "MODEL_CHECK_S", 1.0))


def model_versions() -> list[LoadedModel]:
    """The shipped model and every kept version that loads, oldest first."""
    from recognizer.models import ModelVersion

    found: dict[str, LoadedModel] = {}
    try:
        shipped = _shipped()[1]
        found[shipped.version] = shipped
    except ModelUnavailable as error:
        logger.warning("%s", error)
    for row in ModelVersion.objects.all():
        try:
            found.setdefault(row.version, model_from_bytes(bytes(row.data), source=f"version {row.version}"))
        except ModelUnavailable as error:
            logger.warning("%s", error)
    return sorted(found.values(), key=lambda m: m.metadata.get("trained_at", ""))


def active_version() -> str | None:
    """The active version's name (None: the shipped model), from the cache when there is one
    shared by every process, else from the database."""
    from recognizer.models import ModelVersion

    key = _hint_key()
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


# The hint outlives no activation (model_activate rewrites it); the timeout only bounds how long
# a change made behind the registry's back (a restored database) goes unseen.
HINT_TIMEOUT_S = 30


def _hint_key() -> str:
    # Keyed by database, so sites (or test databases) sharing one Redis do not read each other's.
    db = settings.DATABASES["default"]
    return f"recognizer:active-version:{db.get('HOST', '')}:{db.get('PORT', '')}:{db['NAME']}"


# -- training runs' checkpoints and leftovers -----------------------------------------------


def checkpoint_path(*, run: str, name: str) -> Path:
    """Where run `run` keeps its checkpoint `name` ("latest", "best")."""
    if not _VERSION.match(run) or not _VERSION.match(name):
        raise ValueError(f"not a run or checkpoint name: {run!r}, {name!r}")
    return model_dir() / RUNS / run / f"{name}.safetensors"


def checkpoints_remove(*, run: str) -> None:
    """Forget a cancelled or failed run's checkpoints; they never became a version."""
    folder = checkpoint_path(run=run, name="latest").parent
    for path in folder.glob("*.safetensors"):
        path.unlink(missing_ok=True)
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()


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


# -- the active model of this process -----------------------------------------------------


class _Active:
    """This process's model: what it serves, and when it last checked the active version."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: str | None = None  # the version served ("": the shipped model)
        self.model: LoadedModel | None = None
        self.failed: str | None = None  # a version that cannot load is reported once, not per check
        self.error: str | None = None
        self.next_check = 0.0

    def get(self) -> LoadedModel:
        model = self.model
        if model is not None and time.monotonic() < self.next_check:
            return model
        # One thread checks; the others keep serving the model they have meanwhile.
        if not self.lock.acquire(blocking=model is None):
            return model
        try:
            if self.model is None or time.monotonic() >= self.next_check:
                self._check()
                self.next_check = time.monotonic() + float(getattr(settings, "MODEL_CHECK_S", 1.0))
            if self.model is None:
                raise ModelUnavailable(self.error or "no model")
            return self.model
        finally:
            self.lock.release()

    def _check(self) -> None:
        try:
            version = active_version()
        except DatabaseError as error:
            # The database is down or not migrated: guessing needs no database, so keep serving
            # (the shipped model if nothing was loaded yet) and say so in health.
            before = self.error
            self.error = f"cannot read the active model version from the database: {error}".strip()
            if self.model is None:
                try:
                    self.model, self.key = _shipped()[1], ""
                    self.error += "; serving the shipped model"
                except ModelUnavailable as shipped_error:
                    self.error = str(shipped_error)
            if not (before or "").startswith(self.error.split(";")[0]):
                logger.warning("%s", self.error)  # once, not every second
            return
        key = version or ""  # "": the shipped model
        if self.model is not None and key == self.key:
            self.error = None
            return
        if key == self.failed:
            return  # still the version that cannot load; the last good model serves
        try:
            loaded = self._local_copy(version) if version else _shipped()[1]
        except ModelUnavailable as error:
            self.failed, self.error = key, str(error)
            logger.error("%s", error)
            return
        self.use(key, loaded)

    def _local_copy(self, version: str) -> LoadedModel:
        """The version from this machine's copy, or fetched from the database and copied."""
        from recognizer.models import ModelVersion

        path = version_path(version)
        try:
            return model_load(path=path)
        except ModelUnavailable:
            pass  # no copy yet, or a damaged one: the database has the bytes
        try:
            data = ModelVersion.objects.filter(version=version).values_list("data", flat=True).first()
        except DatabaseError as error:
            raise ModelUnavailable(f"model version {version} cannot be fetched from the database: {error}") from error
        if data is None:
            raise ModelUnavailable(f"the active model version {version} is not in the database")
        loaded = model_from_bytes(bytes(data), source=f"version {version} in the database")
        try:
            write_atomically(path, bytes(data), mode=FILE_MODE)
        except OSError as error:  # serving needs no copy; a restart would fetch it again
            logger.warning("could not keep a local copy of model %s in %s: %s", version, path.parent, error.strerror or error)
        return loaded

    def use(self, version: str | None, loaded: LoadedModel) -> None:
        self.key, self.model, self.failed, self.error = version or "", loaded, None, None
        logger.info("serving model %s", loaded.version)

    def reset(self) -> None:
        with self.lock:
            self.__init__()


_active = _Active()


def active_model() -> LoadedModel:
    """The active model, loaded once per process and reloaded when another version is activated."""
    return _active.get()


def active_model_problem() -> str | None:
    """Why the active file could not be used, if it could not (the last good model serves)."""
    try:
        active_model()
    except ModelUnavailable as error:
        return str(error)
    return _active.error


def active_model_forget() -> None:
    """Drop this process's loaded model (tests switch MODEL_DIR between them)."""
    _active.reset()
