"""The result type every detection decoder returns."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Detection:
    label_id: int
    score: float
    box: list  # [x0, y0, x1, y1] in original-image pixels
