"""What serving runs: a DigitNet exported to ONNX, its weights and activations quantized to
8-bit integers, run by ONNX Runtime.

For one drawing on one thread the network takes 0.17 ms in 8-bit against 0.44 ms in 32-bit
floats (0.82-1.05 ms in PyTorch): ONNX Runtime runs the 3x3 convolutions as integer kernels
(AVX2/AVX-512 VNNI) with batch norm and ReLU fused in. On the shipped model it reads the same
digit as the trained net for all but 1 of MNIST's 10,000 test images and 1 of the 7,494 pen
digits (`python -m bench.quantized`; docs/notebook.md). Training, the gate and
every evaluation keep the PyTorch net.

Static quantization needs the range of every layer's activations: they are measured on
`CALIBRATION_DRAWINGS` scribbles drawn by the site's own stroke renderer (`calibration_inputs`),
the same for every process, so a web machine needs no dataset. A net whose 8-bit copy reads
those scribbles differently from the net itself (`MIN_AGREEMENT`) is quantized again with
7-bit weights, which processors without VNNI need, and failing that served in 32-bit floats.

Each process prepares the net it serves (about 0.3 s), on the model's first guess
(recognizer.modelfile.LoadedModel.serving_net), so a model file or a database row stays the one
store of record: safetensors weights, no second format to keep in step.
"""

import functools
import io
import logging
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from recognizer.net import DigitNet
from recognizer.preprocessing import SIZE, normalize, strokes_to_input

CALIBRATION_DRAWINGS = 64  # 64, 128 and 300 scribbles gave the same pen-digit answers
MIN_AGREEMENT = 0.95  # of the calibration scribbles read alike in 8 bits and 32

log = logging.getLogger(__name__)

# torch's ONNX exporter keeps its state in module globals, and ONNX Runtime's quantizer breaks
# when two threads run it at once: one net prepared at a time per process (two models' first
# guesses at once, or a benchmark preparing one beside a request).
_PREPARING = threading.Lock()


class OnnxNet:
    """`net` in eval mode as an ONNX Runtime session: (N, 1, 28, 28) float32 normalised images
    (numpy or torch) -> (N, 10) float32 logits (numpy). Threads: torch's, when it is built (one
    per gunicorn worker; gunicorn.conf.py). `precision` says what runs: "int8" or "float32"."""

    def __init__(self, net: DigitNet):
        with _PREPARING:
            self._prepare(net)

    def _prepare(self, net: DigitNet) -> None:
        float_model = _export(net)
        self.precision, self.reduce_range = "float32", False
        self.session = _session(float_model)
        calibration = calibration_inputs()
        expected = _logits(self.session, calibration).argmax(1)
        # 8-bit weights first; 7-bit where the processor's integer kernels saturate: on AVX2
        # without VNNI, ONNX Runtime's u8 x s8 products overflow 16 bits, and the shipped
        # model read 84% of the scribbles alike in 8 bits, 95% in 7 (docs/notebook.md).
        agreements = []
        for reduce_range in (False, True):
            try:
                quantized = _session(_quantize(float_model, calibration, reduce_range=reduce_range))
            except Exception as error:  # e.g. an untrained net: the exporter shares its equal biases, which the quantizer cannot
                log.warning("the net could not be quantized (%s): serving it in 32-bit floats", error)
                return
            agreements.append((_logits(quantized, calibration).argmax(1) == expected).mean())
            if agreements[-1] >= MIN_AGREEMENT:
                self.precision, self.session, self.reduce_range = "int8", quantized, reduce_range
                return
        log.warning(
            "the 8-bit net reads %.0f%% of the calibration drawings as the net does with 8-bit weights, %.0f%% with 7-bit ones: "
            "serving 32-bit floats", *(100 * a for a in agreements),
        )  # fmt: skip

    def __call__(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        if isinstance(images, torch.Tensor):
            images = images.numpy()
        return _logits(self.session, images)


def _logits(session: onnxruntime.InferenceSession, images: np.ndarray) -> np.ndarray:
    return session.run(None, {"images": np.ascontiguousarray(images, dtype=np.float32)})[0]


def _export(net: DigitNet) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of torch.export's, which
        # needs onnxscript and takes about 2 s a model, against 50 ms: too slow for a process
        # that switches to a newly promoted model within a second. torch is pinned. It
        # exports in eval mode (batch norm folded into the convolutions) and gives the net back
        # in the mode it found it in.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net, (torch.zeros(1, 1, SIZE, SIZE),), buffer, dynamo=False,
            input_names=["images"], output_names=["logits"],
            dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}},
        )  # fmt: skip
    return buffer.getvalue()


def _session(model: bytes) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    # Threads that wait for work by spinning would take cores from the other workers.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _quantize(model: bytes, calibration: np.ndarray, *, reduce_range: bool = False) -> bytes:
    """Weights to int8 per output channel (7 bits of it with `reduce_range`), activations to
    uint8 with ranges measured on `calibration` (min and max), as QLinearConv and its kin."""

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"images": calibration}])

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="digitsite-int8-") as folder, _quiet_hints():
        out = Path(folder) / "int8.onnx"
        quantize_static(
            onnx.load_from_string(model), out, Calibration(), quant_format=QuantFormat.QOperator,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce_range,
        )  # fmt: skip
        return out.read_bytes()


@functools.cache
def calibration_inputs() -> np.ndarray:
    """`CALIBRATION_DRAWINGS` random scribbles (1-3 strokes of 2-8 turns each) drawn as the site
    draws strokes, normalised: (N, 1, 28, 28) float32, the same in every process."""
    rng = np.random.default_rng(0)
    images = []
    while len(images) < CALIBRATION_DRAWINGS:
        strokes = []
        for _ in range(rng.integers(1, 4)):
            turns = rng.integers(2, 9)
            corners = np.cumsum(rng.normal(0, 60, (turns, 2)), axis=0) + 200
            along = np.linspace(0, 1, 12 * turns)
            strokes.append(np.stack([np.interp(along, np.linspace(0, 1, turns), corners[:, k]) for k in (0, 1)], axis=1))
        if (image := strokes_to_input(strokes).image) is not None:
            images.append(image)
    return normalize(torch.from_numpy(np.stack(images))).numpy()


class _quiet_hints:
    """ONNX Runtime's quantizer logs to the root logger, on every model, that it could
    pre-process the graph first (shape inference, constant folding): the export has done that."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()

    def __enter__(self):
        logging.getLogger().addFilter(self)

    def __exit__(self, *exc):
        logging.getLogger().removeFilter(self)
