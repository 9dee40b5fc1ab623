"""The result type every detection decoder returns."""

from typing import NamedTuple


class Detection(NamedTuple):
    label_id: int
    score: float
    box: list  # [x0, y0, x1, y1] in pixels of the original image

    def placed(self, placement):
        """The same detection with its box mapped from model-input pixels through an image.Placement."""
        return Detection(self.label_id, self.score, placement.to_image(self.box))
