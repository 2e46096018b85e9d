"""How each graph of a serving form answers against the trained net (PyTorch, 32-bit floats):
MNIST test and every pen digit, drawn as strokes by the site's preprocessing; optionally on an
emulated processor without VNNI, where ONNX Runtime takes its AVX2 integer kernels.

    python -m bench.quantized                               # the shipped model and its stored form
    python -m bench.quantized --model PATH                  # a model file: its form is built here
    python -m bench.quantized --emulate Haswell --every 20  # the graphs run under qemu-x86_64 -cpu Haswell
                                                            # (AVX2, no AVX-512/VNNI; apt-get install qemu-user),
                                                            # on every 20th drawing: emulation is ~100x slower

The net's answers are taken natively; the graphs run in a child process (the emulated one with
--emulate), which prints, per variant: accuracy against the net's, and the drawings it reads
differently; then the variant ServingNet picks on that processor, and why.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")
PENDIGITS = Path("/work/shared/pendigits/pendigits-orig.tra")


def prepare(model: Path | None, pendigits: Path, folder: Path, *, every: int = 1) -> None:
    import django

    django.setup()
    import numpy as np
    import torch
    from django.conf import settings

    from recognizer.modelfile import model_load
    from recognizer.net import normalize_tensor
    from recognizer.preprocessing import strokes_to_input
    from recognizer.publishing import serving_form_bytes
    from recognizer.store import shipped_form_path
    from testing.pendigits_data import layout, load_digits
    from training.nn.data import mnist_load

    path = model or Path(settings.SHIPPED_MODEL)
    loaded = model_load(path=path)
    form = shipped_form_path().read_bytes() if model is None else serving_form_bytes(data=path.read_bytes(), source=str(path))
    test = mnist_load(data_dir=Path(settings.MNIST_DIR), train=False)
    digits = load_digits(pendigits)
    pen = np.stack([strokes_to_input(layout(d, 0)).image for d in digits])
    sets = {"MNIST test": (test.images.numpy(), test.labels.numpy()), "pen digits": (pen, np.array([d.label for d in digits]))}
    for i, (name, (images, labels)) in enumerate(sets.items()):
        images, labels = images[::every], labels[::every]
        with torch.inference_mode():
            net = torch.cat([loaded.net(normalize_tensor(torch.from_numpy(c))) for c in np.array_split(images, 20)]).argmax(1).numpy()
        np.savez(folder / f"set{i}.npz", images=images, labels=labels, net=net)
    (folder / "form.zip").write_bytes(form)
    (folder / "sets.json").write_text(json.dumps({"model": loaded.version, "sets": list(sets)}))


def read(folder: Path) -> None:
    """In the child: numpy and ONNX Runtime only."""
    import numpy as np

    from recognizer.preprocessing import normalize
    from recognizer.servingform import ServingNet, serving_form_from_bytes, session_logits, session_make

    form = serving_form_from_bytes((folder / "form.zip").read_bytes(), source="form")
    info = json.loads((folder / "sets.json").read_text())
    print(f"model {info['model']}; ONNX Runtime {__import__('onnxruntime').__version__}")
    for i, name in enumerate(info["sets"]):
        with np.load(folder / f"set{i}.npz") as data:
            images, labels, net = data["images"], data["labels"], data["net"]
        inputs = normalize(images)
        print(f"{name} ({len(labels):,}): net {(net == labels).mean():.2%}")
        for variant in form.manifest["variants"]:
            session = session_make(form.graphs[variant["name"]])
            read_ = np.concatenate([session_logits(session, c).argmax(1) for c in np.array_split(inputs, 20)])
            print(f"  {variant['name']:<8} {(read_ == labels).mean():.2%} ({100 * ((read_ == labels).mean() - (net == labels).mean()):+.2f} points); "
                  f"reads {(read_ != net).sum()} differently from the net; agrees at build: {variant['agrees']}")  # fmt: skip
    # The form's probe drawings (the hardest), against the float32 graph's answers where it was built.
    probe, expected = normalize(form.probe), np.asarray(form.manifest["probe_expected"])
    reference = session_logits(session_make(form.graphs["float32"]), probe)
    for variant in form.manifest["variants"]:
        logits = session_logits(session_make(form.graphs[variant["name"]]), probe)
        print(f"probe ({len(probe)}): {variant['name']:<8} reads {(logits.argmax(1) == expected).mean():.2%} as built "
              f"(where built: {variant.get('check', {}).get('probe_agreement', 1.0):.2%}); "
              f"largest logit change against float32 {np.abs(logits - reference).max():.3f}")  # fmt: skip
    picked = ServingNet(form, source="form")
    print(f"ServingNet here: {picked.variant} ({picked.precision}){'; ' + picked.why if picked.why else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a model file (default: the shipped model and its stored form)")
    parser.add_argument("--pendigits", type=Path, default=PENDIGITS)
    parser.add_argument("--emulate", metavar="CPU", help="run the graphs under qemu-x86_64 -cpu CPU (e.g. Haswell: AVX2 without VNNI)")
    parser.add_argument("--every", type=int, default=1, help="only every Nth drawing of each set (default: all)")
    parser.add_argument("--read", type=Path, help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.read:
        read(args.read)
        return
    with tempfile.TemporaryDirectory(prefix="digitsite-quantized-") as folder:
        prepare(args.model, args.pendigits, Path(folder), every=args.every)
        command = [sys.executable, "-m", "bench.quantized", "--read", folder]
        if args.emulate:
            command = ["qemu-x86_64", "-cpu", args.emulate, *command]
            print(f"graphs under {' '.join(command[:3])}")
        subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=subprocess.PIPE if args.emulate else None)


if __name__ == "__main__":
    main()
