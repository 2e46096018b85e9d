"""A model file: a DigitNet's weights and their metadata in one safetensors file.

The metadata (version, trained at, MNIST test accuracy, net width, temperature, ...) sits in
safetensors' header, so a file is always complete and self-describing, and weights are read
with safetensors alone: nothing is ever unpickled. The same bytes are a file under
settings.MODEL_DIR and a row in the database (recognizer.store).

A file that loads has passed every check a request would otherwise trip on: it is safetensors,
its tensors are exactly a DigitNet's of the width it names, its weights are finite, its
temperature is a positive number, and a blank image through the net gives finite logits.
Anything else is `ModelUnavailable`, whose message names the file and what is wrong.

It needs torch: training, evaluation, the gate and building serving forms read model files.
Web processes serve a model's serving form instead (recognizer.servingform), torch-free.
"""

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from digitsite.files import write_atomically
from recognizer.labels import CLASSES
from recognizer.net import DigitNet, classes_of
from recognizer.servingform import FILE_MODE, ModelMetadata, ModelUnavailable

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class LoadedModel(ModelMetadata):
    """A model that passed every check: the PyTorch net (training, evaluation) and its metadata."""

    net: DigitNet
    metadata: dict[str, str]
    source: str  # where it was read from, for messages: a path, or "version <v>"


def model_to_bytes(*, net: DigitNet, metadata: dict[str, object]) -> bytes:
    """The file's bytes: `net`'s weights, and `metadata` (strings, other values as JSON) plus its width."""
    header = {key: value if isinstance(value, str) else json.dumps(value) for key, value in metadata.items()}
    header["width"] = str(net.width)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in net.state_dict().items()}
    return safetensors_save(tensors, metadata=header)


def model_from_bytes(data: bytes, *, source: str) -> LoadedModel:
    """A model file's bytes -> the checked model; `source` names them in ModelUnavailable's message."""
    try:
        header_size = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
        tensors = safetensors_load(data)
        net = DigitNet(width=int(metadata["width"]), classes=classes_of(tensors))
        net.load_state_dict(tensors, strict=True)
    except Exception as error:  # truncated, not safetensors, wrong shapes, missing keys...
        raise ModelUnavailable(f"model file {source} is not a usable DigitNet: {error}") from error
    if net.classes not in (10, CLASSES):  # ten: a file made before "not a digit" was a class
        raise ModelUnavailable(f"model file {source} answers {net.classes} classes, not 10 or {CLASSES}")
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
    return LoadedModel(net=net, metadata=metadata, source=source)


def model_load(*, path: Path) -> LoadedModel:
    """The model in the file at `path`, checked (ModelUnavailable if it cannot be read or used)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ModelUnavailable(f"model file {path} cannot be read: {error.strerror or error}") from error
    return model_from_bytes(data, source=str(path))


def model_save(*, net: DigitNet, metadata: dict[str, object], path: Path) -> None:
    """Write `net` and `metadata` to `path` atomically: a reader sees the old file or the new one."""
    write_atomically(Path(path), model_to_bytes(net=net, metadata=metadata), mode=FILE_MODE)
