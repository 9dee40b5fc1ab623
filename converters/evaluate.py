"""Float model vs converted model on the same preprocessed inputs: agreement, accuracy or mAP@0.5,
largest score difference. numpy only; the converted model runs through edgenn.runtime."""

import numpy as np

from edgenn.adapters import grid
from edgenn.metrics import mean_average_precision
from edgenn.runtime import open_model


def run_tflite(data, inputs, threads=None):
    """Outputs of the .tflite for every input, as [array (N, ...)] per output (dequantized)."""
    model = open_model(data, probe=False, threads=threads)  # TF is loaded here: no fork probe
    rows = [model.run(x[None]) for x in inputs]
    return [np.concatenate([r[i] for r in rows]) for i in range(len(rows[0]))]


def _detections(output, placement, input_size, decoder):
    params = {k: decoder[k] for k in ("score_threshold", "iou_threshold", "max_detections") if k in decoder}
    found = grid.decode(output[None], image_size=input_size, **params)
    if placement is None:
        return found
    return [d.placed(placement) for d in found]


def compare(task, samples, float_outputs, quant_outputs, decoder=None):
    """The evaluation dict stored in the manifest (metrics as fractions, rounded)."""
    ref, out = float_outputs[0], quant_outputs[0]
    result = {"samples": len(samples), "max_abs_score_delta": round(float(np.abs(ref - out).max()), 5)}
    if task == "classify":
        ref_top, out_top = ref.reshape(len(ref), -1).argmax(1), out.reshape(len(out), -1).argmax(1)
        result["top1_agreement"] = round(float(np.mean(ref_top == out_top)), 4)
        if samples.has_truth:
            truth = np.array(samples.truth)
            result["accuracy_float"] = round(float(np.mean(ref_top == truth)), 4)
            result["accuracy_converted"] = round(float(np.mean(out_top == truth)), 4)
        return result
    size = (samples.inputs.shape[2], samples.inputs.shape[1])
    decoder = decoder or {}
    ref_det = [_detections(o, p, size, decoder) for o, p in zip(ref, samples.placements)]
    out_det = [_detections(o, p, size, decoder) for o, p in zip(out, samples.placements)]
    best = [(a[0].label_id if a else None) == (b[0].label_id if b else None) for a, b in zip(ref_det, out_det)]
    result["top1_agreement"] = round(float(np.mean(best)), 4)
    if samples.has_truth:
        result["map50_float"] = round(mean_average_precision(ref_det, samples.truth, iou=0.5), 4)
        result["map50_converted"] = round(mean_average_precision(out_det, samples.truth, iou=0.5), 4)
    return result


def quality_drop(evaluation):
    """Percentage points lost by the conversion: accuracy or mAP when ground truth is known,
    otherwise the share of samples whose top-1 result changed."""
    for metric in ("accuracy", "map50"):
        if f"{metric}_float" in evaluation:
            return 100 * (evaluation[f"{metric}_float"] - evaluation[f"{metric}_converted"])
    return 100 * (1 - evaluation["top1_agreement"])


def table(evaluation):
    """Printable rows: metric, float model, converted model."""
    rows = [("samples", str(evaluation["samples"]), "")]
    for metric, label in (("accuracy", "accuracy"), ("map50", "mAP@0.5")):
        if f"{metric}_float" in evaluation:
            rows.append((label, f"{100 * evaluation[f'{metric}_float']:.2f} %",
                         f"{100 * evaluation[f'{metric}_converted']:.2f} %"))
    rows.append(("top-1 agreement", "", f"{100 * evaluation['top1_agreement']:.2f} %"))
    rows.append(("max |Δ score|", "", f"{evaluation['max_abs_score_delta']:.4g}"))
    return rows
