"""Conversions for the RNN tests, run once in one spawned child process (TensorFlow stays out of
the test process, and a converter crash cannot take pytest down)."""

import os
import sys
from pathlib import Path


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


WAVS = Path("/tmp/edgenn_speech_wavs")  # WAV folders written from the fixtures, cached between runs (never in the repo)


def demo_wav_folders():
    """(calibration: augmented clips of training speakers, evaluation: every clip of the test speakers)."""
    sys.path.insert(0, str(REPO))
    from training import real_speech

    return (real_speech.write_wav_folder(WAVS / "real_train_cal20_s8", "train", per_label=20, seed=8, augmented=True),
            real_speech.write_wav_folder(WAVS / "real_test", "test"))


def _demo(convert_rnn_modes):
    """The demo speech model through `edgenn convert`'s RNN hook: int8, streaming, calibrated on training
    speakers, evaluated on the test speakers' real clips (None when the model is missing)."""
    from edgenn.converters.pipeline import Options
    from edgenn.converters.rnn import pipeline_convert

    if not DEMO.exists():
        return None
    calibration, evaluation = demo_wav_folders()
    with open(os.devnull, "w") as quiet:
        work = pipeline_convert(str(DEMO), Options(quantize="int8", calibration=str(calibration), eval=str(evaluation),
                                                   streaming=True), quiet)
    return {"int8": _strip(work), "table": work["table"], "labels": work["labels"]}
