"""Driving the page in headless Chromium with Playwright, as a person with a mouse would.

Shared by the browser tests and the benchmarks. Debian's chromium is used (Playwright's own
browser download does not work everywhere); DIGITSITE_CHROMIUM points elsewhere if needed.
"""

import os
from collections.abc import Sequence

import numpy as np
from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = os.environ.get("DIGITSITE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, which a closed network refuses.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)


def is_predict_post(request) -> bool:
    return request.method == "POST" and request.url.endswith("/api/predict/")


class Pad:
    """The page's drawing canvas. Coordinates are canvas pixels (0..400), whatever its CSS size."""

    def __init__(self, page: Page):
        self.page = page
        self.canvas = page.locator("canvas")
        self.box = self.canvas.bounding_box()
        size = page.evaluate("() => [document.querySelector('canvas').width, document.querySelector('canvas').height]")
        self.scale = (self.box["width"] / size[0], self.box["height"] / size[1])

    def _to_page(self, point: Sequence[float]) -> tuple[float, float]:
        return self.box["x"] + point[0] * self.scale[0], self.box["y"] + point[1] * self.scale[1]

    def trace(self, strokes: Sequence[np.ndarray], lift: bool = True) -> None:
        """Draw each stroke with the mouse; the pen stays down on the last one unless `lift`."""
        mouse = self.page.mouse
        for number, stroke in enumerate(strokes):
            mouse.move(*self._to_page(stroke[0]))
            mouse.down()
            for point in stroke[1:]:
                mouse.move(*self._to_page(point))
            if lift or number < len(strokes) - 1:
                mouse.up()

    def draw(self, strokes: Sequence[np.ndarray]) -> dict:
        """Draw each stroke with the mouse; return the page's own answer from /api/predict/
        to the request it sent when the pen was lifted the last time."""
        self.trace(strokes, lift=False)
        # The page sends the drawing as soon as the pen lifts. The first request from here on
        # carries the finished drawing: it is that one, or a live guess timed just before it,
        # which sees the same pixels.
        with self.page.expect_request(is_predict_post) as sent:
            self.page.mouse.up()
        response = sent.value.response()
        return response.json()

    def is_blank(self) -> bool:
        return self.canvas.evaluate("c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data.every(v => v === 0)")

    def clear(self) -> None:
        self.page.get_by_role("button", name="Clear").click()
