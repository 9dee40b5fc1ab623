"""Decoder (and target encoder) of edgenn's own detector head: an anchor-free grid, YOLO-style.

Output format ("edgenn_grid")
-----------------------------
One float tensor of shape [1, S, S, 5 + C] (the batch axis may be absent), every value already
passed through a sigmoid, so each lies in [0, 1] (an int8 model: dequantize first). The image is
cut into S x S cells; cell (row i, column j) covers x in [j, j+1) / S and y in [i, i+1) / S of the
image. Channels of a cell:

    0        objectness p: the probability that an object's box centre falls in this cell
    1, 2     tx, ty: the centre, cx = (j + 2 tx - 0.5) / S, cy = (i + 2 ty - 0.5) / S
             (so a centre anywhere inside the cell is reached with tx, ty in [0.25, 0.75])
    3, 4     tw, th: the box width and height as fractions of the image width and height
    5 ...    class probabilities, one per label (independent sigmoids)

cx, cy, w, h are fractions of the model input, so the same fractions of the original image
when the runner resizes (stretches) the whole frame to the input. The score of a cell is
p * max(class probabilities) for the best class; boxes over `score_threshold` go through
class-aware NMS. Each object is assigned to the single cell holding its centre (encode()).
"""

import numpy as np

from edgenn.adapters.detection import Detection, clamp_box
from edgenn.adapters.nms import class_aware_nms


def _grid(output):
    out = np.asarray(output, np.float32)
    if out.ndim == 4:
        if out.shape[0] != 1:
            raise ValueError(f"edgenn_grid decodes one image at a time, got batch {out.shape[0]}")
        out = out[0]
    if out.ndim != 3 or out.shape[0] != out.shape[1] or out.shape[2] < 6:
        raise ValueError(f"edgenn_grid output must be [1, S, S, 5 + C], got {np.shape(output)}")
    return out


def decode(output, score_threshold=0.3, iou_threshold=0.45, max_detections=20, image_size=(1, 1)):
    """Detections, best first, with boxes in pixels of an image of image_size = (width, height)."""
    out = _grid(output)
    s = out.shape[0]
    cells = out.reshape(s * s, -1)
    # A score is objectness x a class probability <= objectness: look only at cells that can pass.
    candidates = np.flatnonzero(cells[:, 0] > score_threshold)
    width, height = image_size
    labels, scores, boxes = [], [], []
    # Few cells pass on a real frame: plain Python on them costs less than more numpy calls.
    for cell, (p, tx, ty, tw, th, *probs) in zip(candidates.tolist(), cells[candidates].tolist()):
        label = max(range(len(probs)), key=probs.__getitem__)
        score = p * probs[label]
        if score <= score_threshold:
            continue
        row, col = divmod(cell, s)
        cx, cy = (col + 2 * tx - 0.5) / s * width, (row + 2 * ty - 0.5) / s * height
        half_w, half_h = tw * width / 2, th * height / 2
        labels.append(label)
        scores.append(score)
        boxes.append(clamp_box([cx - half_w, cy - half_h, cx + half_w, cy + half_h], width, height))
    keep = class_aware_nms(boxes, scores, labels, iou_threshold, max_detections)
    return [Detection(labels[k], scores[k], boxes[k]) for k in keep]


def encode(objects, grid_size, num_classes, image_size):
    """The training target [S, S, 5 + C] for objects = [(label_id, [x0, y0, x1, y1]), ...] in
    pixels of an image of image_size = (width, height); channel 0 marks the assigned cells."""
    target = np.zeros((grid_size, grid_size, 5 + num_classes), np.float32)
    width, height = image_size
    for label_id, (x0, y0, x1, y1) in objects:
        cx, cy = (x0 + x1) / 2 / width * grid_size, (y0 + y1) / 2 / height * grid_size
        j, i = min(int(cx), grid_size - 1), min(int(cy), grid_size - 1)
        target[i, j, :5] = [1, (cx - j + 0.5) / 2, (cy - i + 0.5) / 2, (x1 - x0) / width, (y1 - y0) / height]
        target[i, j, 5:] = 0
        target[i, j, 5 + label_id] = 1
    return target
