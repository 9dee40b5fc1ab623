"""Detection metrics (IoU, VOC-style mean average precision), keyword matching and phrase scoring."""

import numpy as np

from edgenn.adapters.nms import box_iou_matrix


def iou(a, b):
    """Intersection over union of two boxes [x0, y0, x1, y1]."""
    return float(box_iou_matrix(a, b)[0, 0])


def average_precision(recall, precision):
    """All-point interpolated AP (PASCAL VOC 2010+): area under the monotone precision envelope."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    step = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[step + 1] - r[step]) * p[step + 1]))


def mean_average_precision(predictions, ground_truth, iou=0.5, per_class=False):
    """mAP over the classes present in the ground truth.

    predictions: one list per image of (label_id, score, box) (a Detection unpacks that way);
    ground_truth: one list per image of (label_id, box). A prediction is a true positive when it
    overlaps a not-yet-matched ground-truth box of its class by IoU >= `iou` (best score first).
    With per_class=True, returns (mAP, {label_id: AP})."""
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} prediction lists for {len(ground_truth)} images")
    classes = sorted({int(label) for objects in ground_truth for label, _ in objects})
    aps = {}
    for cls in classes:
        truth = [np.array([b for label, b in objects if label == cls], np.float64).reshape(-1, 4)
                 for objects in ground_truth]
        n_truth = sum(len(t) for t in truth)
        found = [(float(score), i, box) for i, dets in enumerate(predictions)
                 for label, score, box in dets if int(label) == cls]
        found.sort(key=lambda d: -d[0])
        matched = [np.zeros(len(t), bool) for t in truth]
        hits = np.zeros(len(found))
        for k, (_, i, box) in enumerate(found):
            if not len(truth[i]):
                continue
            overlaps = box_iou_matrix(box, truth[i])[0]
            overlaps[matched[i]] = -1
            j = int(np.argmax(overlaps))
            if overlaps[j] >= iou:
                matched[i][j] = True
                hits[k] = 1
        tp = np.cumsum(hits)
        recall = tp / n_truth
        precision = tp / np.arange(1, len(found) + 1)
        aps[cls] = average_precision(recall, precision)
    mean = float(np.mean(list(aps.values()))) if aps else 0.0
    return (mean, aps) if per_class else mean


def match_keywords(truth, events, tolerance=0.5):
    """One-to-one matches of spoken words with keyword events: (recall, false events, |timing errors|).

    truth: (onset_seconds, word) pairs; events: dicts with "label" and "stream_time" (the word's start).
    An event matches an unmatched word of its label whose onset is within `tolerance` seconds."""
    used, errors = set(), []
    for onset, word in truth:
        candidates = [(abs(e["stream_time"] - onset), i) for i, e in enumerate(events)
                      if i not in used and e["label"] == word and abs(e["stream_time"] - onset) <= tolerance]
        if candidates:
            error, best = min(candidates)
            used.add(best)
            errors.append(error)
    false = [e for i, e in enumerate(events) if i not in used]
    return (len(errors) / len(truth) if truth else 1.0), false, errors


def score_phrases(truth, events):
    """Word error rate, whole-phrase accuracy and latency of phrase events against spoken phrases.

    truth: [{"words", "start", "end"}] in time order; events: phrase events ({"words", "detected_at", and
    "start", "end" of what was heard}; a grammar miss has no words). An event belongs to the phrase its heard
    stretch overlaps most; one that overlaps none (a word heard in a pause) to the phrase in whose stretch
    it was decided: from that phrase's start to the next one's (the first stretch begins at 0). Decision
    time alone would give a phrase ended late by loud noise to the next one when that begins just then. A
    phrase is right when exactly one event belongs to it, with its words; latency is that event's
    detected_at minus the phrase's end."""
    from edgenn.phrases import word_errors

    if not truth:
        raise ValueError("score_phrases needs at least one spoken phrase")
    bounds = [p["start"] for p in truth[1:]] + [float("inf")]
    heard = [[] for _ in truth]
    for event in sorted(events, key=lambda e: e["detected_at"]):
        overlaps = [min(p["end"], event["end"]) - max(p["start"], event["start"]) for p in truth] \
            if "start" in event and "end" in event else [0.0]
        index = int(np.argmax(overlaps))
        if overlaps[index] <= 0:
            index = next(i for i, bound in enumerate(bounds) if event["detected_at"] < bound)
        heard[index].append(event)
    errors = sum(word_errors(p["words"], [w for e in got for w in e["words"]]) for p, got in zip(truth, heard))
    words = sum(len(p["words"]) for p in truth)
    right = [len(got) == 1 and got[0]["words"] == p["words"] for p, got in zip(truth, heard)]
    latency = [got[-1]["detected_at"] - p["end"] for p, got in zip(truth, heard) if got]
    return {"phrases": len(truth), "words": words, "word_error_rate": round(errors / max(words, 1), 4),
            "phrase_accuracy": round(sum(right) / max(len(truth), 1), 4), "events": len(events),
            "latency_median_s": round(float(np.median(latency)), 3) if latency else None,
            "latency_p90_s": round(float(np.percentile(latency, 90)), 3) if latency else None,
            "latency_max_s": round(float(np.max(latency)), 3) if latency else None,
            "wrong": [{"said": " ".join(p["words"]), "heard": [" ".join(e["words"]) for e in got]}
                      for p, got, ok in zip(truth, heard, right) if not ok]}
