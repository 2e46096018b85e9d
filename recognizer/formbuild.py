"""Building a model's serving form (recognizer.servingform) from its PyTorch net: once, when the
model is published, never in a web process (this module needs torch, onnx and the training
code's pen guard set; requirements.txt, not requirements/web.txt).

The net is exported to ONNX (float32, batch norm folded into the convolutions), then quantized
statically: weights int8 per output channel, activations uint8, their ranges measured on real
drawings rendered by the serving code (the pen digits shipped with the code, recognizer.pen_digits) plus scribbles, so
that no web machine needs a dataset. Each 8-bit variant is checked against the net on those
drawings and kept, in the manifest, with its figures; those that agree (`agrees`) are tried in
order by every web process on its own processor (recognizer.servingform.ServingNet).

Variants, most portable first:
    int8-w7   7-bit weights (reduce_range): u8 x s7 products cannot overflow 16-bit sums, so
              AVX2 without VNNI computes exactly what VNNI does
    int8-w8   8-bit weights: a little finer, exact only with VNNI (AVX2 may saturate)
"""

import functools
import io
import logging
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from recognizer.net import DigitNet
from recognizer.preprocessing import SIZE, normalize, strokes_to_input
from recognizer.servingform import FEATURES, FLOAT32, FORMAT, ServingForm, session_logits, session_make

SCRIBBLES = 64
PROBE_SIZE = 128  # drawings each web process reads with an 8-bit variant before serving it (about 50 ms)
CALIBRATION_EVERY = 4  # every 4th pen guard drawing (and every scribble) sets the ranges: as good as all, 2 s not 6
# A variant serves if, on the pen guard set, its accuracy is within this of the net's (issue 32's
# target is 0.1 points on MNIST test and the pen digits) and it reads this share of them alike.
MAX_ACCURACY_GAP = 0.001
MIN_AGREEMENT = 0.998
VARIANTS = (("int8-w7", True), ("int8-w8", False))  # name, reduce_range

log = logging.getLogger(__name__)

# torch's ONNX exporter keeps its state in module globals, and ONNX Runtime's quantizer breaks
# when two threads run it at once: one form built at a time per process.
_BUILDING = threading.Lock()


def serving_form_build(*, net: DigitNet, metadata: dict[str, str], model_sha256: str) -> ServingForm:
    """`net`'s serving form; `metadata` and `model_sha256` are those of the weights file it is
    built from (the form names the file it belongs to)."""
    with _BUILDING:
        started = time.perf_counter()
        net.eval()
        float_graph = _export(net)
        images, labels = calibration_drawings()
        inputs = normalize(images)
        with torch.inference_mode():
            truth = torch.cat([net(torch.from_numpy(chunk)) for chunk in np.array_split(inputs, 8)]).numpy().argmax(1)
        guard = labels >= 0
        net_accuracy = float((truth[guard] == labels[guard]).mean())
        float_session = session_make(float_graph)
        # The probe: the scribbles and the guard drawings nearest a change of answer, where
        # saturated sums show first; with the answers of the float32 graph.
        top = np.sort(session_logits(float_session, inputs), axis=1)[:, -2:]
        nearest = np.argsort(top[:, 1] - top[:, 0], kind="stable")
        probe_index = np.concatenate([np.flatnonzero(~guard), [i for i in nearest if guard[i]][: PROBE_SIZE - int((~guard).sum())]])
        probe_expected = session_logits(float_session, inputs[probe_index]).argmax(1)
        calibration = np.concatenate([inputs[guard][::CALIBRATION_EVERY], inputs[~guard]])
        graphs, variants = {FLOAT32: float_graph}, [{"name": FLOAT32, "precision": FLOAT32, "agrees": True}]
        for name, reduce_range in VARIANTS:
            try:
                graph = _quantize(float_graph, calibration, reduce_range=reduce_range)
            except Exception as error:  # e.g. an untrained net: the exporter shares its equal biases, which the quantizer cannot
                log.warning("the net could not be quantized (%s): it serves in 32-bit floats", error)
                break
            read = session_logits(session_make(graph), inputs).argmax(1)
            accuracy = float((read[guard] == labels[guard]).mean())
            agreement = float((read[guard] == truth[guard]).mean())
            agrees = net_accuracy - accuracy <= MAX_ACCURACY_GAP and agreement >= MIN_AGREEMENT
            graphs[name] = graph
            variants.append({
                "name": name, "precision": "int8", "weight_bits": 7 if reduce_range else 8, "agrees": agrees,
                "check": {
                    "drawings": "pen digits shipped with the code (recognizer/pen_digits), rendered by the serving code",
                    "count": int(guard.sum()), "net_accuracy": round(net_accuracy, 6), "accuracy": round(accuracy, 6),
                    "agreement": round(agreement, 6), "scribble_agreement": round(float((read[~guard] == truth[~guard]).mean()), 4),
                    "probe_agreement": round(float((read[probe_index] == probe_expected).mean()), 4),
                },
            })  # fmt: skip
            if not agrees:
                log.warning("model %s: %s reads the pen guard set %.2f%% as the net does (accuracy %.2f%%, net %.2f%%): not served",
                            metadata.get("version"), name, 100 * agreement, 100 * accuracy, 100 * net_accuracy)  # fmt: skip
        probe = images[probe_index]
        manifest = {
            "format": FORMAT,
            "metadata": {key: str(value) for key, value in metadata.items()},
            "model_sha256": model_sha256,
            "variants": variants,
            "probe_expected": probe_expected.tolist(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "onnxruntime": __import__("onnxruntime").__version__,
            "seconds": round(time.perf_counter() - started, 2),
        }
        return ServingForm(manifest=manifest, graphs=graphs, probe=probe)


class _WithFeatures(torch.nn.Module):
    """The net with a second output: the pooled features the last layer reads (N, 4 * width),
    which the memory of a person's own corrections compares drawings by (recognizer.memory)."""

    def __init__(self, net: DigitNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pool, flatten, _dropout, last = self.net.head  # dropout does nothing in eval mode
        features = flatten(pool(self.net.features(x)))
        return last(features), features


def _export(net: DigitNet) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of torch.export's, which needs
        # onnxscript and takes about 2 s a model, against 50 ms. torch is pinned. It exports in
        # eval mode (batch norm folded into the convolutions), then sets the module it was given back to
        # the mode it was in: the wrapper is made in eval mode, else that would set `net` training.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            _WithFeatures(net).eval(), (torch.zeros(1, 1, SIZE, SIZE),), buffer, dynamo=False,
            input_names=["images"], output_names=["logits", FEATURES],
            dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}, FEATURES: {0: "n"}},
        )  # fmt: skip
    return buffer.getvalue()


def _quantize(model: bytes, calibration: np.ndarray, *, reduce_range: bool) -> bytes:
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
def calibration_drawings() -> tuple[np.ndarray, np.ndarray]:
    """The pen guard set's drawings and `SCRIBBLES` random scribbles, as the serving code renders
    them: (N, 28, 28) uint8, and the labels (-1 for a scribble)."""
    from recognizer.pen_digits import pen_digits_strokes

    drawings, labels = pen_digits_strokes()
    images = [strokes_to_input(strokes).image for strokes in drawings]
    kept = [i for i, image in enumerate(images) if image is not None]
    scribbles = _scribbles()
    return (
        np.concatenate([np.stack([images[i] for i in kept]), scribbles]),
        np.concatenate([labels[kept], np.full(len(scribbles), -1)]),
    )


def _scribbles() -> np.ndarray:
    """Random scribbles (1-3 strokes of 2-8 turns each) drawn as the site draws strokes: inputs
    no digit covers, the same in every process."""
    rng = np.random.default_rng(0)
    images = []
    while len(images) < SCRIBBLES:
        strokes = []
        for _ in range(rng.integers(1, 4)):
            turns = rng.integers(2, 9)
            corners = np.cumsum(rng.normal(0, 60, (turns, 2)), axis=0) + 200
            along = np.linspace(0, 1, 12 * turns)
            strokes.append(np.stack([np.interp(along, np.linspace(0, 1, turns), corners[:, k]) for k in (0, 1)], axis=1))
        if (image := strokes_to_input(strokes).image) is not None:
            images.append(image)
    return np.stack(images)


class _quiet_hints:
    """ONNX Runtime's quantizer logs to the root logger, on every model, that it could
    pre-process the graph first (shape inference, constant folding): the export has done that."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()

    def __enter__(self):
        logging.getLogger().addFilter(self)

    def __exit__(self, *exc):
        logging.getLogger().removeFilter(self)
