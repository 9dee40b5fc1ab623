"""Conversions for the RNN tests, run once in one spawned child process (TensorFlow stays out of
the test process, and a converter crash cannot take pytest down)."""

import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edgenn" / "demo" / "speech_commands.keras"

MODES = ("float32", "dynamic", "float16", "int8", "int16x8")
SWEEP_KINDS = ("lstm", "gru", "gru2", "crnn", "bilstm")
SWEEP_FRAMES = 8  # unrolling repeats the same ops per frame: 8 frames cover the op set of 49, much faster
EQUIVALENCE_KINDS = ("crnn", "mfcc_crnn")  # GRU + Conv1D valid (warm-up); LSTM (h, c) + causal Conv1D, [T, F, 1]


def _strip(result):
    return {key: result.get(key) for key in ("tflite", "window_tflite", "manifest", "error")}


def run_all():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import rnn_models
    from edgenn.converters.rnn import convert_rnn_modes

    out = {"sweep": {}, "equivalence": {}}
    calibration, _ = rnn_models.separable_windows(64, 1, frames=SWEEP_FRAMES)
    for kind in SWEEP_KINDS:
        model = rnn_models.build(kind, frames=SWEEP_FRAMES)
        results = convert_rnn_modes(model, MODES, calibration=calibration)
        out["sweep"][kind] = {mode: _strip(r) for mode, r in results.items()}
    stateful = rnn_models.build("lstm", frames=SWEEP_FRAMES, stateful=True)
    out["stateful"] = _strip(convert_rnn_modes(stateful, ["int8"], calibration=calibration)["int8"])

    calibration, _ = rnn_models.separable_windows(100, 5)
    held_out = rnn_models.separable_windows(200, 6)
    for kind in EQUIVALENCE_KINDS:
        model = rnn_models.trained(kind)
        results = convert_rnn_modes(model, ["float32", "int8"], calibration=calibration, eval_data=held_out,
                                    streaming=True)
        out["equivalence"][kind] = {mode: _strip(r) for mode, r in results.items()}
        if kind == "crnn":  # int8 IO: states are requantized between steps by edgenn.streaming
            results = convert_rnn_modes(model, ["int8"], io="int8", calibration=calibration, eval_data=held_out,
                                        streaming=True)
            out["equivalence"]["crnn_int8_io"] = {"int8": _strip(results["int8"])}
    out["held_out"] = held_out
    out["demo"] = _demo(convert_rnn_modes)
    return out


def demo_held_out(per_keyword=15, seed=7):
    """(feature windows, labels) of about 200 clips spoken by voices held out of the demo's training."""
    sys.path.insert(0, str(REPO))
    from training import speech_data

    from edgenn.audio_frontend import FrontEnd, FrontEndParams
    from edgenn.converters.audio_data import window_features

    config = json.loads(DEMO.with_suffix(".json").read_text())
    frontend = FrontEnd(FrontEndParams.from_dict(config["frontend"]))
    clips, labels = speech_data.make_dataset(per_keyword, held_out=True, seed=seed)
    frames = config["input_shape"][0]
    return np.stack([window_features(clip, frontend, frames) for clip in clips])[:200], labels[:200]


def _demo(convert_rnn_modes):
    """The demo speech model, int8 streaming, on held-out synthesized voices (None when unavailable)."""
    import shutil
    if not DEMO.exists() or not shutil.which("espeak-ng"):
        return None
    held_out = demo_held_out()
    calibration, _ = demo_held_out(per_keyword=10, seed=8)  # other clips of the same voices, not the test ones
    results = convert_rnn_modes(str(DEMO), ["int8"], calibration=calibration, eval_data=held_out, streaming=True)
    return {"int8": _strip(results["int8"]), "windows": len(held_out[0])}
