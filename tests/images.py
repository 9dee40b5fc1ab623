"""Reading fixture pictures the way a camera frame arrives: RGB uint8 (grayscale stays 2-D)."""

import cv2


def read_rgb(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"cannot read {path}"
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
