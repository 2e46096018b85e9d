"""Model files: the one place that saves, publishes, activates and loads them.

Layout under settings.MODEL_DIR:
    versions/<version>.safetensors   every published model, never changed after writing
    active.safetensors               a copy of the active one, replaced atomically
    runs/<run>/<name>.safetensors    a training run's checkpoints (latest and best epoch)
    .<name>.<random>.tmp             a file being written; left behind only by a killed process

Until a model is published, the shipped one (settings.SHIPPED_MODEL) is active. Each file holds
the weights and their metadata (version, trained at, MNIST test accuracy, net width, ...) in
safetensors' header, so a file is always complete and self-describing, and nothing is unpickled.

Writes go to a temporary file in the same folder, then `os.replace`: a reader sees the old file
or the new one, never half of one. Each server process keeps the model it loaded and checks
the active file's identity (inode, mtime, size) on every request, which costs one `stat`, so a
newly activated model serves from the next request on, without a restart.
"""

import json
import logging
import math
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from django.conf import settings
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from recognizer.net import DigitNet

logger = logging.getLogger(__name__)

ACTIVE = "active.safetensors"
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


def active_path() -> Path:
    """The active file, or the shipped model when none is published. Raises ModelUnavailable
    when the model folder cannot be looked into (permission denied, ...): that says nothing
    about which model is active, so the shipped one must not quietly take over."""
    active = model_dir() / ACTIVE
    try:
        active.stat()
    except FileNotFoundError:
        return Path(settings.SHIPPED_MODEL)
    except OSError as error:
        raise ModelUnavailable(f"model folder {active.parent} cannot be read: {error.strerror or error}") from error
    return active


def _fallback_reason(path: Path) -> str | None:
    """Why the shipped model serves though models were published (model_publish then always
    leaves an active file): the active file was deleted."""
    if path != Path(settings.SHIPPED_MODEL):
        return None
    try:
        published = sum(1 for _ in (model_dir() / VERSIONS).glob("*.safetensors"))
    except OSError:
        return None
    if not published:
        return None  # a fresh site: the shipped model is meant to serve
    return (
        f"fell back to the shipped model: the active file {model_dir() / ACTIVE} is missing, though "
        f"{published} published version(s) are kept; `manage.py activate_model <version>` chooses one"
    )


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
    return LoadedModel(net=net, metadata=metadata)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600: a web server running as another user must read it.
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_load(*, path: Path) -> LoadedModel:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ModelUnavailable(f"model file {path} cannot be read: {error.strerror or error}") from error
    return model_from_bytes(data, source=str(path))


def model_save(*, net: DigitNet, metadata: dict[str, object], path: Path) -> None:
    _write_atomically(Path(path), model_to_bytes(net=net, metadata=metadata))


def model_publish(*, net: DigitNet, metadata: dict[str, object], activate: bool) -> Path:
    """Keep the model as a version; make it the active one if `activate`."""
    path = version_path(str(metadata["version"]))
    model_save(net=net, metadata=metadata, path=path)
    if activate:
        model_activate(version=str(metadata["version"]))
    elif not (model_dir() / ACTIVE).exists():
        # Once models are published, the active one is always a file here, the shipped one
        # included: a missing active file then means it was deleted, and health says so.
        model_activate(version=model_load(path=Path(settings.SHIPPED_MODEL)).version)
    return path


def model_activate(*, version: str) -> LoadedModel:
    """Make a kept version (or the shipped model) the active one, for every server process."""
    shipped = Path(settings.SHIPPED_MODEL)
    source = version_path(version)
    if not source.exists() and model_load(path=shipped).version == version:
        source = shipped
    data = source.read_bytes() if source.exists() else b""
    if not data:
        raise ModelUnavailable(f"no model version {version!r} in {source.parent}")
    loaded = model_from_bytes(data, source=str(source))  # never activate a file that cannot load
    _write_atomically(model_dir() / ACTIVE, data)
    logger.info("model %s is now active", loaded.version)
    return loaded


def model_versions() -> list[LoadedModel]:
    """The shipped model and every kept version that loads, oldest first."""
    paths = [Path(settings.SHIPPED_MODEL), *sorted((model_dir() / VERSIONS).glob("*.safetensors"))]
    found: dict[str, LoadedModel] = {}
    for path in paths:
        try:
            loaded = model_load(path=path)
        except ModelUnavailable as error:
            logger.warning("%s", error)
            continue
        found.setdefault(loaded.version, loaded)
    return sorted(found.values(), key=lambda m: m.metadata.get("trained_at", ""))


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
    import time

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
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple | None = None  # identity of the file `model` was read from
        self.model: LoadedModel | None = None
        self.failed_key: tuple | None = None  # a broken file is reported once, not per request
        self.error: str | None = None

    def get(self) -> LoadedModel:
        try:
            path = active_path()
        except ModelUnavailable as error:
            # Keep serving the model already loaded, if any; health reports the problem.
            with self.lock:
                if self.error != str(error):
                    logger.error("%s", error)
                self.key = self.failed_key = None  # read the file again once the folder is readable
                self.error = str(error)
                if self.model is None:
                    raise
                return self.model
        key = _identity(path)
        if self.model is not None and key in (self.key, self.failed_key):
            return self.model
        with self.lock:
            if key not in (self.key, self.failed_key):
                self._reload(path, key)
            if self.model is None:
                raise ModelUnavailable(self.error or f"no model file at {path}")
            return self.model

    def _reload(self, path: Path, key: tuple) -> None:
        try:
            with open(path, "rb") as file:
                # The identity of what was actually read: the file may be replaced meanwhile.
                key = _identity_of(path, os.fstat(file.fileno()))
                data = file.read()
        except OSError as error:
            self.failed_key = key
            self.error = f"model file {path} cannot be read: {error.strerror or error}"
            logger.error("%s", self.error)
            return
        try:
            loaded = model_from_bytes(data, source=str(path))
        except ModelUnavailable as error:
            # Keep serving the model already loaded, if any; health reports the problem.
            self.failed_key, self.error = key, str(error)
            logger.error("%s", error)
            return
        self.key, self.model, self.failed_key, self.error = key, loaded, None, _fallback_reason(path)
        logger.info("loaded model %s from %s", loaded.version, path)
        if self.error:
            logger.warning("%s", self.error)

    def reset(self) -> None:
        with self.lock:
            self.__init__()


def _identity(path: Path) -> tuple:
    try:
        return _identity_of(path, os.stat(path))
    except OSError:
        return (str(path), "missing")


def _identity_of(path: Path, st: os.stat_result) -> tuple:
    return (str(path), st.st_ino, st.st_mtime_ns, st.st_size)


_active = _Active()


def active_model() -> LoadedModel:
    """The active model, loaded once per process and reloaded when the active file changes."""
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
