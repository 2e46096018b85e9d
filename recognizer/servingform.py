"""A model's serving form, and the model a web process serves from it: numpy and ONNX Runtime
only, so a web machine needs neither torch nor the training code (requirements/web.txt).

A serving form is built once, when a model is published (recognizer.formbuild, which needs
torch), and kept beside the weights: in the version's database row (ModelVersion.serving_form)
and, for the shipped model, in recognizer/weights/digitnet.serving.zip. It is a zip file of
plain data, nothing that could run code on loading:

    manifest.json   format, the model's metadata (version, temperature, ...), the SHA-256 of the
                    weights file it was built from, and one entry per variant (precision, file,
                    how it was checked against the PyTorch net when it was built)
    <variant>.onnx  the graph: "float32", and 8-bit ones in the order to try them
    probe.npy       drawings (uint8 28x28, rendered by the serving code) that each process
                    reads with an 8-bit variant before serving it; their float32 answers are
                    the manifest's probe_expected

Each process checks an 8-bit variant on its own processor before serving it: ONNX Runtime picks
its integer kernels per processor, and on AVX2 without VNNI its u8 x s8 products saturate 16-bit
sums (vpmaddubsw), so a graph that agrees with the net on one machine may not on another. The
first 8-bit variant that reads the probe drawings as it did where it was built (PROBE_SLACK)
serves; when none does, the float32 graph serves and the log and health say why.
"""

import io
import json
import logging
import os
import threading
import zipfile
from dataclasses import dataclass, field

import numpy as np
import onnxruntime

from recognizer.preprocessing import normalize

FORMAT = 1
FILE_MODE = 0o644  # model files and serving forms hold no secret, and every server process reads them
FLOAT32 = "float32"
# The graphs' second output, built since issue 40: the pooled features the last layer reads,
# which recognizer.memory compares drawings by. A form built before it has none: it serves
# guesses as before, and the memory of a person's corrections is off for that model.
FEATURES = "features"
# How much worse than where it was built an 8-bit variant may read the probe drawings on this
# processor: saturated sums misread 6-16% of such drawings (issue 32), rounding a few.
PROBE_SLACK = 0.03

log = logging.getLogger(__name__)


class ModelUnavailable(RuntimeError):
    """No usable model: missing, corrupt, not a DigitNet, or it cannot be prepared for serving."""


class ServingFormMissing(ModelUnavailable):
    """A published version has no serving form yet: the worker or `manage.py build_serving_forms`
    builds one; until then the last good model serves."""


@dataclass(frozen=True)
class ServingForm:
    manifest: dict
    graphs: dict[str, bytes]  # variant name -> ONNX graph
    probe: np.ndarray  # (N, 28, 28) uint8


def serving_form_to_bytes(*, form: ServingForm) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(form.manifest, indent=1, sort_keys=True))
        for name, graph in form.graphs.items():
            archive.writestr(f"{name}.onnx", graph)
        probe = io.BytesIO()
        np.save(probe, np.ascontiguousarray(form.probe, dtype=np.uint8), allow_pickle=False)
        archive.writestr("probe.npy", probe.getvalue())
    return buffer.getvalue()


def serving_form_from_bytes(data: bytes, *, source: str) -> ServingForm:
    """A serving form's bytes -> the form (ModelUnavailable, naming `source`, if it is not one)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format {manifest.get('format')!r}, this code reads {FORMAT}")
            graphs = {variant["name"]: archive.read(f"{variant['name']}.onnx") for variant in manifest["variants"]}
            probe = np.load(io.BytesIO(archive.read("probe.npy")), allow_pickle=False)
        if FLOAT32 not in graphs or "version" not in manifest["metadata"]:
            raise ValueError("it has no float32 graph or no version")
    except Exception as error:  # not a zip, a member missing, bad JSON...
        raise ModelUnavailable(f"serving form {source} is not usable: {error}") from error
    return ServingForm(manifest=manifest, graphs=graphs, probe=probe)


def serving_form_manifest(data: bytes, *, source: str) -> dict:
    """Only the manifest (the admin wants a version's name, not its sessions)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return json.loads(archive.read("manifest.json"))
    except Exception as error:
        raise ModelUnavailable(f"serving form {source} is not usable: {error}") from error


def metadata_describe(metadata: dict[str, str]) -> dict:
    """A model's metadata with numbers as numbers, for the API and the admin."""
    described: dict = dict(metadata)
    for key, value in metadata.items():
        try:
            described[key] = json.loads(value)
        except (TypeError, ValueError):
            pass
    described["version"] = metadata["version"]  # a version like "1" stays a string
    return described


def _threads() -> int:
    # One thread unless told: gunicorn runs a worker per core and sets OMP_NUM_THREADS (gunicorn.conf.py).
    return int(os.environ.get("OMP_NUM_THREADS") or 1)


def session_make(graph: bytes) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.inter_op_num_threads = 1
    # Threads that wait for work by spinning would take cores from the other workers.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def session_logits(session: onnxruntime.InferenceSession, images: np.ndarray) -> np.ndarray:
    return session.run(["logits"], {"images": np.ascontiguousarray(images, dtype=np.float32)})[0]


class ServingNet:
    """The graph a process serves: (N, 1, 28, 28) float32 normalised images -> (N, classes)
    logits. `precision` is "int8" or "float32"; `variant` names the graph; `why` says why
    32-bit floats serve when they do; `has_features` whether its graph also gives the pooled
    features (`read`), which the memory of a person's corrections needs."""

    def __init__(self, form: ServingForm, *, source: str):
        self.session, self.precision, self.variant, self.why = session_make(form.graphs[FLOAT32]), FLOAT32, FLOAT32, None
        self.classes = int(self.session.get_outputs()[0].shape[1])  # 10 digits, or 11 with "not a digit": the graph says
        self.has_features = FEATURES in {output.name for output in self.session.get_outputs()}
        if not self.has_features:
            log.warning("model %s: its serving form has no features output: the memory of corrections is off for it", source)
        probe, expected = normalize(form.probe), np.asarray(form.manifest["probe_expected"])
        tried = []
        for variant in form.manifest["variants"]:
            if variant["precision"] == FLOAT32 or not variant["agrees"]:
                continue
            session = session_make(form.graphs[variant["name"]])
            agreement = float((session_logits(session, probe).argmax(1) == expected).mean())
            # As it read them where it was built, give or take PROBE_SLACK: the probe drawings
            # are the hardest ones, so a sound variant misreads a few of them everywhere.
            if agreement >= variant["check"]["probe_agreement"] - PROBE_SLACK:
                self.session, self.precision, self.variant = session, variant["precision"], variant["name"]
                return
            tried.append(f"{variant['name']} reads {agreement:.0%} of them as the net does, {variant['check']['probe_agreement']:.0%} where it was built")
        self.why = (
            f"no 8-bit variant of model {source} reads the probe drawings as the net does on this processor "
            f"({'; '.join(tried) or 'it has none that agreed with the net when it was built'}): serving 32-bit floats"
        )
        log.warning("%s", self.why)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return session_logits(self.session, images)

    def read(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(logits, features) in one run of the graph; features None for a form without them."""
        feed = {"images": np.ascontiguousarray(images, dtype=np.float32)}
        if not self.has_features:
            return self.session.run(["logits"], feed)[0], None
        logits, features = self.session.run(["logits", FEATURES], feed)
        return logits, features


class ModelMetadata:
    """What a model's metadata says, for a model file (recognizer.modelfile.LoadedModel) and a
    serving form (ServedModel) alike: both have `metadata`, the file's strings."""

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
        return metadata_describe(self.metadata)


@dataclass(eq=False)
class ServedModel(ModelMetadata):
    """A model a web process can serve: its metadata and serving form; the ONNX Runtime sessions
    are made (and checked on this processor) on the first call of `serving_net()`."""

    form: ServingForm
    source: str  # where it was read from, for messages
    _net: ServingNet | None = field(default=None, init=False, repr=False)
    _error: str | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def metadata(self) -> dict[str, str]:
        return self.form.manifest["metadata"]

    def serving_net(self) -> ServingNet:
        """What a guess runs; made once however many threads ask (about 50 ms: sessions, and
        the probe drawings read with each variant). One that cannot be made raises
        ModelUnavailable on every call."""
        if (made := self._net) is not None:
            return made
        with self._lock:
            if self._net is None and self._error is None:
                try:
                    self._net = ServingNet(self.form, source=self.source)
                except Exception as error:  # a graph ONNX Runtime refuses; this is the last guard
                    self._error = f"model {self.source} could not be prepared for serving: {error}"
                    log.error("%s", self._error)
            if self._error is not None:
                raise ModelUnavailable(self._error)
            return self._net

    @property
    def serving_problem(self) -> str | None:
        """Why the model cannot guess, once its serving net was tried and failed; else None."""
        return self._error

    @property
    def serving_note(self) -> str | None:
        """Why it guesses in 32-bit floats when no 8-bit variant agreed on this processor; else None."""
        return self._net.why if self._net is not None else None


def served_model_from_bytes(data: bytes, *, source: str) -> ServedModel:
    return ServedModel(form=serving_form_from_bytes(data, source=source), source=source)
