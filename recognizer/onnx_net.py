"""What serving runs: a DigitNet exported to ONNX and run by ONNX Runtime.

The same function as the net in eval mode (logits agree to about 1e-6), in about half the time
for one drawing on one thread: 0.44 against 0.82-1.05 ms, and 0.48 against 1.20 ms when the
CPU's caches have been emptied by other work in between, as they are between the requests of a
busy server (README, "Where the time goes"). PyTorch runs this net's small 3x3 convolutions as
im2col and a matrix product; ONNX Runtime fuses batch norm and ReLU into blocked convolution
kernels. Training, the gate and every evaluation keep the PyTorch net.

Each process exports the net it loaded (about 50 ms), so a model file or a database row stays
the one store of record: safetensors weights, no second format to keep in step.
"""

import io
import threading
import warnings

import numpy as np
import onnxruntime
import torch

from recognizer.net import DigitNet
from recognizer.preprocessing import SIZE

# torch's ONNX exporter keeps its state in module globals: one export at a time per process (a
# gthread worker, or a request loading a model while a training run publishes one).
_EXPORTING = threading.Lock()


class OnnxNet:
    """`net` in eval mode as an ONNX Runtime session: (N, 1, 28, 28) float32 normalised images
    (numpy or torch) -> (N, 10) float32 logits (numpy). Threads: torch's, when it is built (one
    per gunicorn worker; gunicorn.conf.py)."""

    def __init__(self, net: DigitNet):
        buffer = io.BytesIO()
        with _EXPORTING, warnings.catch_warnings():
            # The TorchScript-based exporter is deprecated in favour of torch.export's, which
            # needs onnxscript and takes about 2 s a model, against 50 ms: too slow for a process
            # that switches to a newly promoted model within a second. torch is pinned. It
            # exports in eval mode and gives the net back in the mode it found it in.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                net, (torch.zeros(1, 1, SIZE, SIZE),), buffer, dynamo=False,
                input_names=["images"], output_names=["logits"],
                dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}},
            )  # fmt: skip
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Threads that wait for work by spinning would take cores from the other workers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        if isinstance(images, torch.Tensor):
            images = images.numpy()
        return self.session.run(None, {"images": np.ascontiguousarray(images, dtype=np.float32)})[0]

