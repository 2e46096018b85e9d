"""Turn a drawing into the 28x28 image the network reads, the way MNIST itself was made.

MNIST's digits were size-normalised to fit a 20x20 box, keeping their aspect ratio, with
anti-aliasing, then placed in a 28x28 frame so that their centre of mass sits at its centre.
A drawing from the canvas goes through the same steps, so a digit drawn small in a corner reads
like one drawn large in the middle. Training and serving share this module: the network is
asked about images made exactly like the ones it learnt from.
"""

import base64
import binascii
import io
import re

import cv2
import numpy as np
import torch
from PIL import Image

SIZE = 28  # the frame MNIST digits sit in
BOX = 20  # the box the longer side of a digit is scaled to
MEAN = 0.1307  # MNIST training set, pixel values in [0, 1]
STD = 0.3081

# After inversion (ink bright, 0..255): anti-aliasing fringes and JPEG noise stay below this,
# so they neither count as ink on an empty canvas nor widen the digit's bounding box.
INK_THRESHOLD = 48

MAX_IMAGE_BYTES = 1_500_000  # decoded from base64; a 400x400 drawing is a few kB
MAX_IMAGE_PIXELS = 4096 * 4096  # refused before decoding: a tiny PNG can claim a huge canvas
# A digit needs a few hundred pixels a side: bigger JPEGs are decoded at 1/2, 1/4 or 1/8.
MAX_JPEG_PIXELS = 2048 * 2048
# What a PNG's pixels may take once decoded at full size (width x height x channels x bytes):
# with the conversions after it, a request stays under 50 MB above idle (bench/memory.py).
MAX_DECODED_BYTES = 16 * 2**20
DRAWING_SIDE = 400  # the page's canvas: a stored drawing is at most this many pixels a side
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,", re.I)


class PreprocessingError(ValueError):
    """The input is not a usable image. `status` is the HTTP status an API answers with."""

    status = 400


class ImageTooLarge(PreprocessingError):
    status = 413


def decode_data_url(data_url: str) -> bytes:
    """`data:image/png;base64,...` -> the image file's bytes."""
    match = _DATA_URL.match(data_url)
    if not match:
        raise PreprocessingError("image must be a data URL: data:image/png;base64,<data>")
    mime = (match["mime"] or "").lower()
    if mime not in FORMATS.values():
        raise PreprocessingError(f"image must be PNG or JPEG, not {mime or 'unspecified'}")
    payload = data_url[match.end() :]
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ImageTooLarge(f"image is larger than {MAX_IMAGE_BYTES // 1000} kB")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise PreprocessingError("image is not valid base64") from None


def decode_image(data: bytes) -> np.ndarray:
    """PNG or JPEG bytes -> grayscale uint8 with the ink bright and the background 0.

    What decoding may cost is worked out from the header first: a 174 kB PNG can hold a
    16-bit RGBA 4096x4096 image, 128 MB of pixels. A PNG is refused (413) when its pixels would
    take more than MAX_DECODED_BYTES; a big baseline JPEG is decoded reduced (1/2 to 1/8, which
    libjpeg does while decoding), since a digit needs far fewer pixels. JPEG's EXIF orientation
    is applied, so a phone's photo reads upright.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLarge(f"image is larger than {MAX_IMAGE_BYTES // 1000} kB")
    fmt, width, height, cost = _image_header(data)
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(f"image is {width}x{height}; at most {MAX_IMAGE_PIXELS} pixels")
    if cost > MAX_DECODED_BYTES:
        raise ImageTooLarge(
            f"image is {width}x{height} and would take {cost / 2**20:.0f} MB to decode; at most "
            f"{MAX_DECODED_BYTES // 2**20} MB (e.g. 2048x2048 in 8-bit RGBA): send it smaller"
        )
    if fmt == "JPEG":
        reduction = next(r for r in _JPEG_REDUCED if (width // r) * (height // r) <= MAX_JPEG_PIXELS or r == 8)
        gray = cv2.imdecode(np.frombuffer(data, np.uint8), _JPEG_REDUCED[reduction])
        if gray is None or gray.size == 0:
            raise PreprocessingError("image could not be decoded as PNG or JPEG")
        return np.subtract(255, gray, out=gray)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise PreprocessingError("image could not be decoded as PNG or JPEG")
    if pixels.dtype == np.uint16:
        pixels = cv2.convertScaleAbs(pixels, alpha=1 / 257)  # to 8 bits without a 16-bit temporary
    return _ink(pixels)


_JPEG_REDUCED = {
    1: cv2.IMREAD_GRAYSCALE,  # the grayscale flags apply EXIF orientation; IMREAD_UNCHANGED does not
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}  # by colour type, as OpenCV decodes them


def _image_header(data: bytes) -> tuple[str, int, int, int]:
    """Format, width, height and the bytes decoding would take, read from the header alone."""
    try:
        with Image.open(io.BytesIO(data)) as header:
            fmt, (width, height) = header.format, header.size
            progressive = bool(header.info.get("progressive"))
            layers = getattr(header, "layers", 1)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"image has more than {MAX_IMAGE_PIXELS} pixels") from None
    except Exception:
        raise PreprocessingError("image could not be decoded as PNG or JPEG") from None
    if fmt not in FORMATS:
        raise PreprocessingError(f"image must be PNG or JPEG, not {fmt}")
    if fmt == "PNG":
        bit_depth, colour_type = data[24], data[25]  # IHDR, which Pillow has just read
        cost = width * height * _PNG_CHANNELS.get(colour_type, 4) * (2 if bit_depth == 16 else 1)
    elif progressive:
        # libjpeg keeps every DCT coefficient of a progressive JPEG (2 bytes each), even reduced.
        cost = width * height * layers * 2
    else:
        cost = 0  # decoded reduced to at most MAX_JPEG_PIXELS
    return fmt, width, height, cost


def _ink(pixels: np.ndarray) -> np.ndarray:
    """8-bit gray, BGR or BGRA -> ink bright over a background of 0, in as few full-size copies
    as the conversions allow. A canvas exports transparent black around the ink: the
    transparent part is background (white paper), not ink."""
    if pixels.ndim == 2:
        return np.subtract(255, pixels, out=pixels)
    channels = pixels.shape[2]
    if channels == 1:
        return np.subtract(255, pixels[..., 0], out=pixels[..., 0])
    gray = cv2.cvtColor(pixels, cv2.COLOR_BGRA2GRAY if channels == 4 else cv2.COLOR_BGR2GRAY)
    ink = np.subtract(255, gray, out=gray)
    if channels == 4:
        # Over white, a pixel's ink is its own ink times its opacity.
        ink = cv2.multiply(ink, np.ascontiguousarray(pixels[..., 3]), scale=1 / 255)
    return ink


def drawing_png(data: bytes) -> bytes:
    """A drawing as it is kept: decoded, then re-encoded as a grayscale PNG (dark ink on white)
    at most DRAWING_SIDE pixels a side. Never the client's bytes, which may carry anything
    after the image's end; a stored drawing is at most about 160 kB."""
    ink = decode_image(data)
    height, width = ink.shape
    scale = DRAWING_SIDE / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        ink = cv2.resize(ink, size, interpolation=cv2.INTER_AREA)
    return to_png(255 - ink)


def to_model_input(data: bytes) -> np.ndarray | None:
    """Image bytes -> 28x28 uint8 (ink bright) as MNIST would have it, or None if no ink."""
    return center_digit(decode_image(data))


def center_digit(ink: np.ndarray) -> np.ndarray | None:
    """Grayscale, ink bright -> 28x28 uint8: crop, fit to the 20 px box, centre of mass."""
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    if rows.size == 0:
        return None
    digit = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    height, width = digit.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # INTER_AREA averages when shrinking (anti-aliasing); when enlarging it would act like
    # nearest-neighbour, so a tiny scribble is interpolated instead.
    digit = cv2.resize(digit, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)

    # Whole-pixel shift, as MNIST did: a sub-pixel one would blur the strokes. MNIST's digits
    # have their centre of mass at pixel (14, 14) on average, not at 13.5.
    moments = cv2.moments(digit)
    height, width = digit.shape
    if moments["m00"] > 0:
        cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    else:
        cx, cy = (width - 1) / 2, (height - 1) / 2
    left = int(np.clip(round(SIZE / 2 - cx), 0, SIZE - width))
    top = int(np.clip(round(SIZE / 2 - cy), 0, SIZE - height))

    frame = np.zeros((SIZE, SIZE), np.uint8)
    frame[top : top + height, left : left + width] = digit
    return frame


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 28, 28) or float in [0, 1] -> what the network takes: (N, 1, 28, 28)."""
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    return ((images - MEAN) / STD).reshape(-1, 1, SIZE, SIZE)


def to_png(image: np.ndarray) -> bytes:
    """A uint8 image -> PNG bytes (for storing and showing what the model saw)."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 array
        raise ValueError("could not encode PNG")
    return encoded.tobytes()


def to_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
