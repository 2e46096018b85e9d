"""Pictures and tables of a run's figures for the admin: confusion matrices as PNG (OpenCV)."""

import cv2
import numpy as np

from recognizer.labels import NOT_A_DIGIT

CELL = 26  # pixels per cell
MARGIN = 22  # room for the digits along the axes


def confusion_png(matrix: list[list[int]]) -> bytes:
    """A square confusion matrix (rows: true class, columns: guess; digits, then "not a digit",
    drawn as N) as a PNG: each cell shaded by its share of the row, right answers in green,
    mistakes in red, counts written in. "Not a digit" is drawn only when some row or column has it."""
    counts = np.asarray(matrix, dtype=float)
    if len(counts) > NOT_A_DIGIT and not counts[NOT_A_DIGIT].any() and not counts[:, NOT_A_DIGIT].any():
        counts = counts[:NOT_A_DIGIT, :NOT_A_DIGIT]
    classes = len(counts)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = MARGIN + classes * CELL + 1
    image = np.full((size, size, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(classes):
        name = "N" if i == NOT_A_DIGIT else str(i)
        cv2.putText(image, name, (MARGIN + i * CELL + 9, 15), font, 0.4, (80, 80, 80), 1, cv2.LINE_AA)  # guess
        cv2.putText(image, name, (6, MARGIN + i * CELL + 17), font, 0.4, (80, 80, 80), 1, cv2.LINE_AA)  # truth
        for j in range(classes):
            x, y = MARGIN + j * CELL, MARGIN + i * CELL
            # Mistakes are few; a square root makes a single one visible. BGR colours.
            strength = np.sqrt(shares[i, j])
            colour = (255 - 155 * strength, 255 - 55 * strength, 255 - 155 * strength) if i == j else (
                255 - 200 * strength, 255 - 200 * strength, 255)  # fmt: skip
            cv2.rectangle(image, (x, y), (x + CELL, y + CELL), tuple(int(c) for c in colour), -1)
            cv2.rectangle(image, (x, y), (x + CELL, y + CELL), (220, 220, 220), 1)
            if counts[i, j]:
                text = str(int(counts[i, j])) if counts[i, j] < 1000 else f"{counts[i, j] / 1000:.0f}k"
                scale = 0.3 if len(text) > 2 else 0.35
                cv2.putText(image, text, (x + 3, y + 17), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", image)
    return png.tobytes()


def per_digit(matrix: list[list[int]] | None) -> list[tuple[int, int]]:
    """(right, of) for each true digit."""
    if matrix is None:
        return [(0, 0)] * 10
    counts = np.asarray(matrix)
    return [(int(counts[d, d]), int(counts[d].sum())) for d in range(10)]
