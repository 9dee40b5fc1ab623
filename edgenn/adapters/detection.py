"""The result type every detection decoder returns, and the clamp they share."""

from typing import NamedTuple


class Detection(NamedTuple):
    label_id: int
    score: float
    box: list  # [x0, y0, x1, y1] in pixels of the original image

    def placed(self, placement):
        """The same detection with its box mapped from model-input pixels through an image.Placement."""
        return Detection(self.label_id, self.score, placement.to_image(self.box))


def clamp_box(box, width, height):
    """[x0, y0, x1, y1] held inside an image of width x height, as floats."""
    x0, y0, x1, y1 = box
    return [float(min(max(x0, 0.0), width)), float(min(max(y0, 0.0), height)),
            float(min(max(x1, 0.0), width)), float(min(max(y1, 0.0), height))]
