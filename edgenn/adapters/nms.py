"""Greedy non-maximum suppression, shared by every detection decoder."""

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


SMALL_SET = 24  # below this many boxes plain Python beats numpy's per-call overhead


def nms(boxes_xyxy, scores, iou_threshold=0.5, max_detections=None):
    """Indices of the boxes kept, best score first: each box suppresses later ones that overlap
    it by more than iou_threshold."""
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    limit = len(order) if max_detections is None else max_detections
    if len(order) <= SMALL_SET:  # the usual camera frame: a handful of candidates
        return order[_nms_small(boxes[order].tolist(), iou_threshold, limit)]
    x0, y0, x1, y1 = boxes.T
    areas = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    keep = []
    while order.size and len(keep) < limit:
        best, order = order[0], order[1:]
        keep.append(best)
        inter = (np.maximum(np.minimum(x1[best], x1[order]) - np.maximum(x0[best], x0[order]), 0)
                 * np.maximum(np.minimum(y1[best], y1[order]) - np.maximum(y0[best], y0[order]), 0))
        union = areas[best] + areas[order] - inter
        order = order[inter <= iou_threshold * union]  # iou <= threshold, with no division by an empty union
    return np.asarray(keep, dtype=np.int64)


def _nms_small(sorted_boxes, iou_threshold, limit, classes=None):
    """Positions kept in a best-first list of [x0, y0, x1, y1]; the same rule as nms() (with `classes`, the
    classes in the same order: a box only suppresses boxes of its class)."""
    kept = []
    for i, (ax0, ay0, ax1, ay1) in enumerate(sorted_boxes):
        if len(kept) >= limit:
            break
        area = max(ax1 - ax0, 0) * max(ay1 - ay0, 0)
        for k in kept:
            if classes is not None and classes[k] != classes[i]:
                continue
            bx0, by0, bx1, by1 = sorted_boxes[k]
            inter = max(min(ax1, bx1) - max(ax0, bx0), 0) * max(min(ay1, by1) - max(ay0, by0), 0)
            union = area + max(bx1 - bx0, 0) * max(by1 - by0, 0) - inter
            if inter > iou_threshold * union:
                break
        else:
            kept.append(i)
    return kept


def class_aware_nms(boxes_xyxy, scores, classes, iou_threshold=0.5, max_detections=None):
    """Like nms(), but boxes only suppress boxes of the same class."""
    if len(scores) <= SMALL_SET:  # the usual camera frame, in plain Python
        order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable, as nms()'s argsort
        boxes, classes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4).tolist(), list(classes)
        kept = _nms_small([boxes[i] for i in order], iou_threshold,
                          len(order) if max_detections is None else max_detections, [classes[i] for i in order])
        return np.asarray([order[k] for k in kept], dtype=np.int64)
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    # shift each class to its own region of the plane so classes never overlap
    offset = (np.abs(boxes).max() + 1) * 2 * np.asarray(classes, np.float64)
    return nms(boxes + offset[:, None], scores, iou_threshold, max_detections)
