"""Draw results on a BGR frame: boxes with label and score, top classes, and a status line."""

import cv2

FONT = cv2.FONT_HERSHEY_SIMPLEX
PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
           (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
           (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203)]


def colour(label_id):
    return PALETTE[label_id % len(PALETTE)]


def _text(image, text, origin, scale, fg, bg):
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    x, y = origin
    y = max(y, h + base)
    cv2.rectangle(image, (x, y - h - base), (x + w + 2, y + 1), bg, -1)
    cv2.putText(image, text, (x + 1, y - base + 1), FONT, scale, fg, 1, cv2.LINE_AA)


def draw(image, results, label, status=None):
    """Draw detections (objects with .box) or classes on image in place; label(id) names a class."""
    scale = max(0.4, min(image.shape[:2]) / 800)
    thickness = max(1, round(scale * 2))
    line = 0
    for result in results:
        name = f"{label(result.label_id)} {result.score:.2f}"
        box = getattr(result, "box", None)
        if box is None:
            line += 1
            _text(image, name, (4, int(line * 22 * scale / 0.5) + 16), scale, (255, 255, 255), (40, 40, 40))
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour(result.label_id), thickness)
        _text(image, name, (x0, y0), scale, (255, 255, 255), colour(result.label_id))
    if status:
        h = image.shape[0]
        _text(image, status, (4, h - 4), scale, (255, 255, 255), (0, 0, 0))
    return image
