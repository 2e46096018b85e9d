"""The worst drawing the API accepts (the most strokes and points), and what one stored Sample
holds: shared by the quota tests and bench.worst_drawing."""

import json

import numpy as np


def worst_strokes(*, spread: float = 400.0, seed: int = 0) -> list[list[list[float]]]:
    """Strokes as a client posts them: the most strokes and kept points the API accepts, every
    point near a corner of a `spread`-px square (centred on the canvas when that is 400), in
    an order that makes every segment cross the drawing."""
    from recognizer.fields import MAX_KEPT_POINTS, MAX_STROKES

    rng = np.random.default_rng(seed)
    low = 0.0 if spread <= 400 else -spread / 2
    corners = np.array([[0, 0], [1, 1], [1, 0], [0, 1]], dtype=np.float64)
    # Near a corner, not on it: no three points in a row are in line, so none is dropped.
    points = (corners[np.arange(MAX_KEPT_POINTS) % 4] * 0.9 + rng.uniform(0, 0.1, (MAX_KEPT_POINTS, 2))) * spread + low
    points = np.round(np.clip(points, -9999.9, 9999.9), 1)
    return [stroke.tolist() for stroke in np.array_split(points, MAX_STROKES)]


def stored_bytes(sample) -> dict[str, int]:
    """What one Sample row holds in its three big columns, as the database keeps them: the
    strokes as the JSONField writes them (Python's json.dumps), the PNG, the 28x28 input."""
    return {
        "strokes": len(json.dumps(sample.strokes)) if sample.strokes is not None else 0,
        "drawing": len(bytes(sample.drawing)),
        "model_input": len(bytes(sample.model_input)),
    }
