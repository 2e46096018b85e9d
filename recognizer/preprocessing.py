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
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
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
# A digit needs a few hundred pixels a side: bigger JPEGs are decoded at 1/2, 1/4 or 1/8, and
# every decoded image is scaled down to at most MAX_DECODED_SIDE (a 10 px stroke at 4096 px
# keeps 2.5 px) before the work that grows with its pixels.
MAX_JPEG_PIXELS = 2048 * 2048
MAX_DECODED_SIDE = 1024
# What a PNG's pixels may take once decoded at full size (width x height x channels x bytes):
# with the conversions after it, a request stays under 50 MB above idle (bench/memory.py).
MAX_DECODED_BYTES = 16 * 2**20
DRAWING_SIDE = 400  # the page's canvas: a stored drawing is at most this many pixels a side
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,", re.I)
_JPEG_REDUCED = {
    1: cv2.IMREAD_GRAYSCALE,  # the grayscale flags apply EXIF orientation; IMREAD_UNCHANGED does not
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}  # by colour type, as OpenCV decodes them
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Strokes = Sequence[np.ndarray]  # each stroke an (n, 2) float array of x, y points, y down

LINE_WIDTH = 2.0  # px of the 28x28 frame; chosen by measurement: bench/stroke_width.py, docs/notebook.md
SUPERSAMPLE = 4  # drawn this many times larger, then shrunk with area averaging: anti-aliasing
MIN_STROKE_EXTENT = 12.0  # input px: a mark whose longer side is shorter is a tap or a dot
MIN_IMAGE_EXTENT = 0.1  # of an image's longer side: the same for a picture
PAGE_BRUSH = 24  # canvas px: the page's pen (draw.js reads it from data-brush); drawings kept for review
_SHIFT = 4  # OpenCV draws with sub-pixel precision in fixed point: 4 fractional bits
SIMPLIFY_TOLERANCE = 0.5  # canvas px: no kept point of the path moves further than this
STORED_DECIMALS = 1  # a tenth of a canvas pixel, as the page records a pointer (draw.js)

DRAWING_MAX_BYTES = 9_000  # a stored drawing's PNG; with the strokes and the input a sample is under 20 kB
DRAWING_GRAYS = 16  # anti-aliased edges in 16 grays look as in 256 on any screen; half the bytes


class PreprocessingError(ValueError):
    """The input is not a usable image. `status` is the HTTP status an API answers with."""

    status = 400


class ImageTooLarge(PreprocessingError):
    status = 413


@dataclass(frozen=True)
class ModelInput:
    """What the network is asked about, or why there is nothing to ask."""

    image: np.ndarray | None  # 28x28 uint8, ink bright; None when there is nothing to read
    reason: str | None = None  # "no_ink" or "too_small" when image is None


NO_INK = ModelInput(None, "no_ink")
TOO_SMALL = ModelInput(None, "too_small")


# -- an image: decoded, its ink found, placed as MNIST's digits are ----------------------------


def image_to_input(data: bytes) -> ModelInput:
    """PNG or JPEG bytes -> the 28x28 input, MNIST's recipe. Raises PreprocessingError.

    A bitmap carries its pen: scaled into the box, a small digit drawn with a wide brush stays
    a blob. Thinning its strokes and drawing them again at LINE_WIDTH was measured and read
    worse at every size below half the canvas (docs/notebook.md), so it is not done."""
    ink = decode_image(data)
    digit = crop_ink(ink)
    if digit is None:
        return NO_INK
    # Without the pen's path, "small" is relative to the picture: a tap on the page's canvas is
    # one brush-sized disc, 6% of its side; the smallest digits people draw are 14% or more.
    if max(digit.shape) < MIN_IMAGE_EXTENT * max(ink.shape):
        return TOO_SMALL
    return ModelInput(fit_in_box(digit))


def to_model_input(data: bytes) -> np.ndarray | None:
    """Image bytes -> 28x28 uint8 (ink bright) as MNIST would have it, or None if no ink."""
    return image_to_input(data).image


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
    """PNG or JPEG bytes -> grayscale uint8 with the ink bright and the background 0, at most
    MAX_DECODED_SIDE pixels a side.

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
        return _at_most(MAX_DECODED_SIDE, np.subtract(255, gray, out=gray))
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise PreprocessingError("image could not be decoded as PNG or JPEG")
    if pixels.dtype == np.uint16:
        pixels = cv2.convertScaleAbs(pixels, alpha=1 / 257)  # to 8 bits without a 16-bit temporary
    return _at_most(MAX_DECODED_SIDE, _ink(pixels))


def _image_header(data: bytes) -> tuple[str, int, int, int]:
    """Format, width, height and the bytes decoding would take, read from the header alone."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 26:
        # A PNG's size, depth and colour type sit at fixed places in its first chunk; reading
        # them here is a tenth of a millisecond less a guess than asking Pillow.
        width, height = struct.unpack(">II", data[16:24])
        bit_depth, colour_type = data[24], data[25]
        return "PNG", width, height, width * height * _PNG_CHANNELS.get(colour_type, 4) * (2 if bit_depth == 16 else 1)
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
    if progressive:
        # libjpeg keeps every DCT coefficient of a progressive JPEG (2 bytes each), even reduced.
        cost = width * height * layers * 2
    else:
        cost = 0  # decoded reduced to at most MAX_JPEG_PIXELS
    return fmt, width, height, cost


def _at_most(side: int, ink: np.ndarray) -> np.ndarray:
    # What follows decoding (cropping, scaling into the box) costs time and
    # memory with every pixel; a digit needs far fewer than a 4096x4096 image has.
    height, width = ink.shape
    if max(height, width) <= side:
        return ink
    scale = side / max(height, width)
    return cv2.resize(ink, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


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


def center_digit(ink: np.ndarray) -> np.ndarray | None:
    """Grayscale, ink bright -> 28x28 uint8: crop, fit to the 20 px box, centre of mass."""
    digit = crop_ink(ink)
    return None if digit is None else fit_in_box(digit)


def crop_ink(ink: np.ndarray) -> np.ndarray | None:
    """The bounding box of the ink, or None when there is none."""
    ink_mask = ink > INK_THRESHOLD
    rows = np.flatnonzero(ink_mask.any(axis=1))
    cols = np.flatnonzero(ink_mask.any(axis=0))
    if rows.size == 0:
        return None
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_in_box(digit: np.ndarray) -> np.ndarray:
    """A digit cropped to its ink -> 28x28 uint8: fit to the 20 px box, centre of mass."""
    height, width = digit.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # INTER_AREA averages when shrinking (anti-aliasing); when enlarging it would act like
    # nearest-neighbour, so a tiny scribble is interpolated instead.
    digit = cv2.resize(digit, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return place_by_mass(digit)


def place_by_mass(digit: np.ndarray) -> np.ndarray:
    """A digit already in the 20 px box -> the 28x28 frame with its centre of mass centred.

    Whole-pixel shift, as MNIST did: a sub-pixel one would blur the strokes. MNIST's digits
    have their centre of mass at pixel (14, 14) on average, not at 13.5.
    """
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


# -- strokes: the pen's own path, drawn as MNIST's pen drew ------------------------------------
#
# A bitmap from the canvas carries the page's brush (PAGE_BRUSH) whatever the digit's size, so a
# small digit arrives as a blob. Strokes carry only the path, and are drawn here with a line as
# wide, relative to the 20 px box, as MNIST's pen strokes are, whatever size they were drawn.


def strokes_to_input(strokes: Strokes, *, line_width: float | None = None, supersample: int = SUPERSAMPLE) -> ModelInput:
    """Strokes (points in any pixel units) -> the 28x28 input: the path scaled into the 20 px
    box, drawn with a line of `line_width` px (default LINE_WIDTH), anti-aliased, centre of
    mass centred."""
    strokes = [stroke for stroke in _point_arrays(strokes) if len(stroke)]
    if not strokes:
        return NO_INK
    points = np.concatenate(strokes)
    if (points.max(axis=0) - points.min(axis=0)).max() < MIN_STROKE_EXTENT:
        return TOO_SMALL
    return ModelInput(draw_path(strokes, line_width=LINE_WIDTH if line_width is None else line_width, supersample=supersample))


def draw_path(strokes: list[np.ndarray], *, line_width: float, supersample: int) -> np.ndarray:
    """The path scaled so that its ink, line included, fills the 20 px box as MNIST's did,
    drawn `supersample` times larger, shrunk with area averaging, centre of mass centred."""
    points = np.concatenate(strokes)
    low = points.min(axis=0)
    line = line_width * supersample
    scale = (BOX * supersample - line) / max(float((points.max(axis=0) - low).max()), 1.0)
    digit = crop_ink(draw_strokes([(stroke - low) * scale for stroke in strokes], width=line))
    height, width = digit.shape
    size = (max(1, round(width / supersample)), max(1, round(height / supersample)))
    return place_by_mass(cv2.resize(digit, size, interpolation=cv2.INTER_AREA))


def draw_strokes(strokes: Strokes, *, width: float, canvas: np.ndarray | None = None) -> np.ndarray:
    """Round-capped, anti-aliased strokes, ink bright (255) on 0, like a 2D canvas draws them.
    Points are pixels; without a canvas, one just big enough is made, points offset by half a line."""
    if canvas is None:
        margin = width / 2 + 1
        strokes = [stroke + margin for stroke in strokes]
        extent = np.concatenate(strokes).max(axis=0) + margin
        canvas = np.zeros((int(np.ceil(extent[1])) + 1, int(np.ceil(extent[0])) + 1), np.uint8)
    thickness = max(1, round(width))
    for stroke in strokes:
        path = np.round(stroke * (1 << _SHIFT)).astype(np.int32)
        if (path == path[0]).all():  # a tap: the canvas draws a dot
            cv2.circle(canvas, tuple(path[0]), round(width / 2 * (1 << _SHIFT)), 255, -1, cv2.LINE_AA, _SHIFT)
        else:
            cv2.polylines(canvas, [path], False, 255, thickness, cv2.LINE_AA, _SHIFT)
    return canvas


def strokes_to_drawing(strokes: Strokes, *, brush: float = PAGE_BRUSH, max_side: int = DRAWING_SIDE) -> np.ndarray:
    """What the person saw on the page: black strokes on white, cropped to the drawing, at
    most `max_side` px a side (a drawing is kept for review, its size bounded)."""
    strokes = _point_arrays(strokes)
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = min(1.0, (max_side - brush) / max(float((high - low).max()), 1.0))
    ink = draw_strokes([(stroke - low) * scale for stroke in strokes], width=brush * scale)
    return 255 - ink


def strokes_simplify(strokes: Strokes, *, tolerance: float = SIMPLIFY_TOLERANCE) -> list[np.ndarray]:
    """Each stroke with the points dropped that lie within `tolerance` px of the path without
    them (Ramer-Douglas-Peucker, OpenCV's), rounded to a tenth of a pixel.

    A pointer sends a point per event, most of them on a straight run between their
    neighbours; the path drawn at the 28x28 input's scale is the same without them
    (bench/simplify.py: the 7,494 pen digits' inputs and guesses). Fewer points bound what a
    guess costs and what a stored sample takes."""
    simplified = []
    for stroke in _point_arrays(strokes):
        if len(stroke) > 2:
            # float32 keeps a tenth of a pixel exactly enough: 24 bits hold 10,000.0 to 1/1000.
            kept = cv2.approxPolyDP(stroke.astype(np.float32).reshape(-1, 1, 2), tolerance, False)
            stroke = kept.reshape(-1, 2).astype(np.float64)
        simplified.append(np.round(stroke, STORED_DECIMALS))
    return simplified


def strokes_compact(strokes: Strokes) -> list[list[list[float | int]]]:
    """Strokes as kept in JSON: a tenth of a pixel, and a whole number without its ".0"."""
    return [
        [[int(v) if v.is_integer() else v for v in point] for point in np.round(stroke, STORED_DECIMALS).tolist()]
        for stroke in _point_arrays(strokes)
    ]


def _point_arrays(strokes: Strokes) -> list[np.ndarray]:
    return [np.asarray(stroke, dtype=np.float64).reshape(-1, 2) for stroke in strokes]


# -- what is stored and shown: the drawing's PNG, the input as a picture -----------------------


def drawing_png(data: bytes) -> bytes:
    """A drawing as it is kept: decoded, then re-encoded as a grayscale PNG (dark ink on white)
    at most DRAWING_SIDE pixels a side (`drawing_to_png`). Never the client's bytes, which may
    carry anything after the image's end."""
    return drawing_to_png(255 - _at_most(DRAWING_SIDE, decode_image(data)))


def drawing_to_png(gray: np.ndarray, *, max_bytes: int = DRAWING_MAX_BYTES) -> bytes:
    """A drawing (uint8 gray, ink dark) -> a 4-bit PNG of at most `max_bytes`: halved in size
    until it fits. A digit's drawing fits at full size (a pen digit's is 1-5 kB); only noise or
    a scribble over the whole canvas is shrunk, so one stored sample stays small whatever was sent."""
    levels = DRAWING_GRAYS - 1
    while True:
        quantized = cv2.convertScaleAbs(gray, alpha=levels / 255)  # rounds to 0..15
        image = Image.fromarray(quantized, "P")
        image.putpalette([round(i * 255 / levels) for i in range(DRAWING_GRAYS) for _ in range(3)])
        out = io.BytesIO()
        image.save(out, "PNG", bits=4)
        if out.tell() <= max_bytes or max(gray.shape) <= 8:
            return out.getvalue()
        height, width = gray.shape
        gray = cv2.resize(gray, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (..., 28, 28) or float in [0, 1] -> what the network takes: (N, 1, 28, 28) float32.
    numpy only: web processes have no torch (training's tensors: recognizer.net.normalize_tensor)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / np.float32(255.0)
    return ((images.astype(np.float32, copy=False) - np.float32(MEAN)) / np.float32(STD)).reshape(-1, 1, SIZE, SIZE)


def to_png(image: np.ndarray) -> bytes:
    """A uint8 image -> PNG bytes (for storing and showing what the model saw)."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 array
        raise ValueError("could not encode PNG")
    return encoded.tobytes()


def input_image_decode(data_url: str) -> np.ndarray:
    """An answer's input_image (to_data_url(to_png(...)) of a 28x28 model input), sent back by the
    page -> that 28x28 uint8 image. Anything else is refused before its pixels are decoded."""
    data = decode_data_url(data_url)
    if _image_header(data)[:3] != ("PNG", SIZE, SIZE):
        raise PreprocessingError(f"must be a {SIZE}x{SIZE} PNG, as input_image is")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None or image.shape != (SIZE, SIZE):
        raise PreprocessingError(f"must be a {SIZE}x{SIZE} PNG, as input_image is")
    return image


def to_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
