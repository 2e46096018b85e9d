"""How the served network (8 bits, ONNX Runtime) answers against the trained one (PyTorch, 32-bit
floats): MNIST test and every pen digit, drawn as strokes by the site's preprocessing.

    python -m bench.quantized [--model PATH]   # default: the shipped model
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digitsite.settings")


def main() -> None:
    import django

    django.setup()
    import numpy as np
    import torch
    from django.conf import settings

    from bench.pendigits_data import layout, load_digits
    from recognizer.modelfile import model_load
    from recognizer.preprocessing import normalize, strokes_to_input
    from recognizer.services import SURE_THRESHOLD
    from training.data import mnist_load
    from training.trainer import probabilities

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a model file (default: the shipped model)")
    args = parser.parse_args()
    model = model_load(path=args.model or settings.SHIPPED_MODEL)
    serving = model.serving_net()
    print(f"model {model.version}, served in {serving.precision}" + (" (7-bit weights)" if serving.reduce_range else ""))

    def compare(name: str, images: np.ndarray, labels: torch.Tensor) -> None:
        images = torch.from_numpy(images)
        trained = probabilities(model.net, images, temperature=model.temperature)
        served = torch.softmax(torch.from_numpy(serving(normalize(images))) / model.temperature, dim=1)
        differ = (trained.argmax(1) != served.argmax(1)).sum()
        sure_differs = ((trained.max(1).values >= SURE_THRESHOLD) != (served.max(1).values >= SURE_THRESHOLD)).sum()
        gap = (trained - served).abs().max(1).values
        print(
            f"{name} ({len(labels):,}): trained {(trained.argmax(1) == labels).float().mean():.2%}, "
            f"served {(served.argmax(1) == labels).float().mean():.2%}; answers differ on {differ}, "
            f"sure/not sure on {sure_differs}; probabilities move by at most {gap.max():.3f} (mean {gap.mean():.4f})"
        )

    test = mnist_load(data_dir=Path(settings.MNIST_DIR), train=False)
    compare("MNIST test", test.images.numpy(), test.labels)
    digits = load_digits()
    images = np.stack([strokes_to_input(layout(d, 0)).image for d in digits])
    compare("pen digits", images, torch.tensor([d.label for d in digits]))


if __name__ == "__main__":
    main()
