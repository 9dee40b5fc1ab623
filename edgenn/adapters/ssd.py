"""SSD models with TFLite_Detection_PostProcess: four outputs — boxes [1, N, 4] as normalised
(ymin, xmin, ymax, xmax), class ids [1, N], scores [1, N], count [1]. Their order in the output list
differs between TF1 and TF2 exports, so they are told apart by shape and content."""

import numpy as np

from edgenn.adapters.detection import Detection, clamp_box


def split_outputs(outputs):
    """(boxes [N, 4], classes [N], scores [N], count) from the four outputs in any order."""
    boxes = next(o for o in outputs if o.ndim == 3 and o.shape[-1] == 4)
    count = next(o for o in outputs if o.size == 1)
    vectors = [o.reshape(-1) for o in outputs if o.ndim == 2 and o.size > 1]
    if len(vectors) != 2:
        raise ValueError("expected two [1, N] outputs (classes and scores)")
    # Scores lie in [0, 1]; class ids are whole numbers that usually exceed 1.
    first, second = vectors
    first_is_scores = first.max(initial=0) <= 1.0 and not np.allclose(first, np.round(first)) or (
        second.max(initial=0) > 1.0)
    scores, classes = (first, second) if first_is_scores else (second, first)
    return boxes[0], classes, scores, int(round(float(count.reshape(-1)[0])))


def decode(outputs, image_size, placement=None, input_size=None, threshold=0.5, max_detections=None):
    """Detections in original-image pixels. image_size=(width, height); with a Placement from
    edgenn.image.fit, boxes are mapped back through it (input_size=(width, height) of the model)."""
    boxes, classes, scores, count = split_outputs(outputs)
    width, height = image_size
    found = []
    n = max(min(count, len(scores)), 0)
    # plain Python on the few rows that pass: numpy calls per value would cost more than the rows
    for ymin, xmin, ymax, xmax, label, score in zip(*boxes[:n].T.tolist(), classes[:n].tolist(), scores[:n].tolist()):
        if score < threshold:
            continue
        if placement is not None:
            box = placement.to_image([xmin * input_size[0], ymin * input_size[1],
                                      xmax * input_size[0], ymax * input_size[1]])
        else:
            box = [xmin * width, ymin * height, xmax * width, ymax * height]
        found.append(Detection(int(label), float(score), clamp_box(box, width, height)))
    found.sort(key=lambda d: -d.score)
    return found[:max_detections] if max_detections else found
