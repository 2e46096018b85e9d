"""Pack Omniglot's published strokes zip into training/nn/omniglot/omniglot.npz, the file a run
reads (training.nn.omniglot): a default retrain and the gate must not depend on a folder beside
the checkout. Run once, when the packed file was made; kept with the command that made it.

    python -m tools.omniglot_pack [--zip ../shared/omniglot/strokes_background_small1.zip] [--out training/nn/omniglot/omniglot.npz]
"""

import argparse
import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from training.nn.omniglot import ALPHABETS, PACKED, Drawing

DEFAULT_ZIP = Path(__file__).resolve().parents[2] / "shared" / "omniglot" / "strokes_background_small1.zip"


class OmniglotMissing(FileNotFoundError):
    """The Omniglot strokes zip is not where it was looked for."""


def omniglot_zip_path() -> Path:
    """Where the zip is read from: settings.OMNIGLOT_STROKES (DIGITSITE_OMNIGLOT_STROKES), or ../shared/omniglot
    beside the checkout when run outside the site."""
    from django.conf import settings

    return Path(settings.OMNIGLOT_STROKES) if settings.configured else Path(os.environ.get("DIGITSITE_OMNIGLOT_STROKES", DEFAULT_ZIP))


_NAME = re.compile(r"^[^/]+/(?P<alphabet>[^/]+)/character(?P<character>\d+)/\d+_(?P<drawer>\d+)\.txt$")


def omniglot_read(path: Path | None = None) -> list[Drawing]:
    """Every drawing in Omniglot's published strokes zip, y turned to grow downward as on a canvas."""
    path = Path(path or omniglot_zip_path())
    if not path.is_file():
        raise OmniglotMissing(
            f"Omniglot strokes not found at {path}: put strokes_background_small1.zip there (../shared/omniglot/ beside "
            f"the checkout), or set DIGITSITE_OMNIGLOT_STROKES to where it is"
        )
    drawings = []
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            match = _NAME.match(name)
            if not match or name.startswith("__MACOSX"):
                continue
            drawings.append(
                Drawing(match["alphabet"], int(match["character"]), int(match["drawer"]), _strokes(archive.read(name).decode()))
            )
    return drawings


def _strokes(text: str) -> tuple[np.ndarray, ...]:
    strokes, current = [], []
    for line in text.splitlines():
        line = line.strip()
        if line in ("START", "BREAK"):
            if current:
                strokes.append(np.array(current))
            current = []
        elif line:
            x, y, _ = line.split(",")
            current.append((float(x), -float(y)))  # Omniglot's y grows upward; a canvas's down
    if current:
        strokes.append(np.array(current))
    return tuple(strokes)


def omniglot_pack(*, drawings: list[Drawing], out: Path = PACKED) -> None:
    """The drawings as whole tenths of Omniglot's pixels (int16), strokes and drawings as point counts."""
    points = [np.round(s * 10).astype(np.int16) for d in drawings for s in d.strokes]
    out.parent.mkdir(parents=True, exist_ok=True)
    with io.BytesIO() as buffer:
        np.savez_compressed(
            buffer,
            points=np.concatenate(points),
            stroke_points=np.array([len(p) for p in points], dtype=np.int32),
            drawing_strokes=np.array([len(d.strokes) for d in drawings], dtype=np.int32),
            alphabet=np.array([ALPHABETS.index(d.alphabet) for d in drawings], dtype=np.int8),
            character=np.array([d.character for d in drawings], dtype=np.int8),
            drawer=np.array([d.drawer for d in drawings], dtype=np.int8),
        )
        out.write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip", type=Path, default=None, help=f"the strokes zip (default: {DEFAULT_ZIP})")
    parser.add_argument("--out", type=Path, default=PACKED, help="where to write the packed drawings (default: %(default)s)")
    args = parser.parse_args()
    drawings = omniglot_read(args.zip)
    omniglot_pack(drawings=drawings, out=args.out)
    print(f"{len(drawings)} drawings written to {args.out} ({args.out.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
