"""Digits drawn the way the page's canvas draws them: round-capped black strokes on a
transparent 400x400 canvas, exported as PNG. Shared by every app's tests."""

import base64

import cv2
import numpy as np

from recognizer.preprocessing import PAGE_BRUSH

CANVAS = 400
PEN = PAGE_BRUSH

# Stroke outlines in a unit box (x right, y down); several strokes per digit where people lift the pen.
STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [[(0.5 + 0.3 * np.sin(t), 0.5 - 0.42 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]],
    1: [[(0.5, 0.08), (0.5, 0.92)]],
    2: [[(0.2, 0.3), (0.3, 0.12), (0.5, 0.06), (0.72, 0.14), (0.78, 0.32), (0.65, 0.52), (0.2, 0.9), (0.82, 0.9)]],
    3: [[(0.2, 0.12), (0.5, 0.05), (0.75, 0.15), (0.75, 0.32), (0.45, 0.47), (0.78, 0.6), (0.8, 0.8), (0.55, 0.95), (0.2, 0.88)]],
    4: [[(0.62, 0.92), (0.62, 0.08), (0.15, 0.65), (0.85, 0.65)]],
    7: [[(0.1, 0.2), (0.1, 0.1), (0.85, 0.1), (0.45, 0.92)]],  # with a tick, read as a 7 without doubt
}


def strokes(digit: int, *, centre=(0.5, 0.5), height: float = 0.6) -> list[np.ndarray]:
    """The digit's strokes in canvas pixels, at `centre` (share of the canvas), `height` tall."""
    size = height * CANVAS
    offset = np.array(centre) * CANVAS
    return [(np.array(stroke) - 0.5) * size + offset for stroke in STROKES[digit]]


def draw(digit: int, *, centre=(0.5, 0.5), height: float = 0.6, pen: int = PEN) -> np.ndarray:
    """RGBA canvas with the digit drawn on it, round-capped and anti-aliased."""
    canvas = np.zeros((CANVAS, CANVAS, 4), np.uint8)  # transparent black, like a fresh canvas
    for points in strokes(digit, centre=centre, height=height):
        cv2.polylines(canvas, [np.round(points * 16).astype(np.int32)], False, (0, 0, 0, 255), pen, cv2.LINE_AA, 4)
    return canvas


def png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def drawn(digit: int, **kwargs) -> str:
    """A digit as the page would send it: a PNG data URL."""
    return data_url(png(draw(digit, **kwargs)))


def blank() -> str:
    return data_url(png(np.zeros((CANVAS, CANVAS, 4), np.uint8)))


# A 1 with a long lead-in: to a model that learnt from MNIST, as much a 7 without its crossbar.
ONE_OR_SEVEN = [np.array([(130.0, 90.0), (250.0, 80.0), (225.0, 320.0)])]

# An 8 in one stroke from the top, canvas pixels. Drawn slowly it reads as a 7, then a 2, then an 8.
_T = np.linspace(0, 2 * np.pi, 40)
EIGHT = [np.stack([200 + 70 * np.sin(2 * _T), 200 - 130 * np.cos(_T)], axis=1)]


def as_json(strokes_: list[np.ndarray]) -> list:
    """Strokes as the page posts them."""
    return [np.round(stroke, 1).tolist() for stroke in strokes_]


def same_picture(stored: np.ndarray, sent: np.ndarray) -> bool:
    """A stored drawing shows what was sent: the same size, each pixel within half of one of
    the 16 grays it is kept in (recognizer.preprocessing.DRAWING_GRAYS)."""
    return stored.shape == sent.shape and np.abs(stored.astype(int) - sent).max() <= 9
