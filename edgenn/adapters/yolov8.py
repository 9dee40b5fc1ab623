"""YOLOv8 raw output (Ultralytics TFLite export): one tensor [1, 4 + C, N] (or [1, N, 4 + C]) of
box centre/size (cx, cy, w, h) followed by C class scores, per candidate; no objectness. Box units
are normalised to the input size in Ultralytics' TFLite exports, pixels in some others: both are
handled. Candidates above the threshold go through per-class NMS."""

import numpy as np

from edgenn.adapters.detection import Detection, clamp_box
from edgenn.adapters.nms import class_aware_nms
from edgenn.runtime import dequantize


def decode(output, input_size, placement, image_size, threshold=0.25, iou_threshold=0.45, max_detections=100,
           quantized=None):
    """Detections in original-image pixels. input_size=(width, height) of the model input; placement
    from edgenn.image.fit maps model-input pixels back to the image of image_size=(width, height).
    quantized: the output's TensorInfo when `output` holds a quantized tensor's raw integers."""
    table = np.asarray(output)[0]
    if table.shape[0] > table.shape[1]:  # [N, 4 + C] layout
        table = table.T
    # Best class score per candidate along the rows, on the raw values (8400 candidates, a handful pass):
    # the rest of the work, dequantizing included, only on those that pass.
    best = _real(table[4:].max(axis=0), quantized)
    keep = np.flatnonzero(best >= threshold)
    candidates = _real(table[:, keep], quantized)
    boxes, classes, scores = candidates[:4].T, candidates[4:].argmax(axis=0), best[keep]
    if boxes.size and boxes[:, :4].max() <= 2.0:  # normalised coordinates
        boxes = boxes * np.array([input_size[0], input_size[1], input_size[0], input_size[1]], np.float32)
    xyxy = np.stack([boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2,
                     boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2], axis=1)
    found = []
    for i in class_aware_nms(xyxy, scores, classes, iou_threshold, max_detections).tolist():
        box = clamp_box(placement.to_image(xyxy[i].tolist()), *image_size)
        found.append(Detection(int(classes[i]), float(scores[i]), box))
    return found


def _real(values, quantized):
    return dequantize(values, quantized) if quantized is not None else values.astype(np.float32)
