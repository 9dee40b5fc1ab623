"""Greedy non-maximum suppression in numpy, shared by every detection decoder."""

import numpy as np


def box_iou_matrix(a, b):
    """IoU of every box in a (N, 4) against every box in b (M, 4), boxes [x0, y0, x1, y1] -> (N, M)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes_xyxy, scores, iou_threshold=0.5, max_detections=None):
    """Indices of the boxes kept, best score first: each box suppresses later ones that overlap
    it by more than iou_threshold."""
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep = []
    while order.size and (max_detections is None or len(keep) < max_detections):
        best, order = order[0], order[1:]
        keep.append(best)
        order = order[box_iou_matrix(boxes[best], boxes[order])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def class_aware_nms(boxes_xyxy, scores, classes, iou_threshold=0.5, max_detections=None):
    """Like nms(), but boxes only suppress boxes of the same class."""
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    # shift each class to its own region of the plane so classes never overlap
    offset = (np.abs(boxes).max() + 1) * 2 * np.asarray(classes, np.float64)
    return nms(boxes + offset[:, None], scores, iou_threshold, max_detections)
