"""Streaming per-step latency vs full-window latency in LiteRT, float32 and int8, in one run.

Converts the demo speech model (edgenn/demo/speech_commands.keras) to a window model and a
streaming step model in both modes, then times invoke() of each (median of --runs, after warm-up).
Calibration uses random-normal feature windows (latency does not depend on calibration quality).
With --fused it also converts the LSTM alternative (tf_keras rebuild -> UNIDIRECTIONAL_SEQUENCE_LSTM)
of a same-shaped LSTM model, to compare size and speed with unrolling.

    .venv/bin/python bench/rnn_latency.py [--runs 300] [--threads 1] [--fused]
"""

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edgenn.runtime import open_model  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "edgenn" / "demo" / "speech_commands.keras"


def median_ms(model, runs, reset=False):
    for position, tensor in enumerate(model.inputs):
        model.set_input(position, np.zeros(tensor.shape, np.float32))
    times = []
    for _ in range(runs + 10):
        if reset:
            model.reset_state()
        start = time.perf_counter()
        model.invoke()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[10:])


def fused_lstm_rows(frames, features, units, classes, runs, threads, calibration):
    """Unrolled (Keras 3) vs fused (tf_keras) LSTM window models, same weights, float32 and int8."""
    import keras
    import tensorflow as tf
    import tf_keras

    from edgenn.converters import rnn

    k3 = keras.Sequential([keras.Input((frames, features)), keras.layers.LSTM(units),
                           keras.layers.Dense(classes, activation="softmax")])
    k2 = tf_keras.Sequential([tf_keras.Input((frames, features), batch_size=1), tf_keras.layers.LSTM(units),
                              tf_keras.layers.Dense(classes, activation="softmax")])
    k2.set_weights(k3.get_weights())
    rows = []
    for mode in ("float32", "int8"):
        unrolled = rnn.convert_rnn(k3, mode, calibration=calibration)["tflite"]
        converter = tf.lite.TFLiteConverter.from_keras_model(k2)
        if mode == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([w[None]] for w in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        fused = converter.convert()
        reference = k3.predict(calibration[:20], verbose=0)
        for name, data in (("unrolled", unrolled), ("fused", fused)):
            model = open_model(data, threads=threads, probe=False)
            scores = []
            for window in calibration[:20]:
                model.reset_state()
                scores.append(model.run(window[None])[0][0])
            error = float(np.max(np.abs(np.stack(scores) - reference)))
            rows.append((f"LSTM{units} window, {name}", mode, len(data), median_ms(model, runs, reset=name == "fused"),
                         error))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fused", action="store_true", help="also compare the fused LSTM op with unrolling")
    args = parser.parse_args()

    from edgenn.converters import rnn

    model = rnn.load_keras(DEMO)
    frames, features = model.inputs[0].shape[1:3]
    calibration = np.random.default_rng(0).normal(0, 1, (100, frames, features)).astype(np.float32)
    print(f"model {DEMO.name}: input [{frames}, {features}], LiteRT, {args.threads} thread(s), "
          f"median of {args.runs} invokes")
    rows = []
    results = rnn.convert_rnn_modes(model, ["float32", "int8"], calibration=calibration, streaming=True,
                                    eval_data=calibration[:20])
    for mode, result in results.items():
        window = open_model(result["window_tflite"], threads=args.threads, probe=False)
        step = open_model(result["tflite"], threads=args.threads, probe=False)
        window_ms, step_ms = median_ms(window, args.runs), median_ms(step, args.runs)
        rows.append(("window (49 frames)", mode, len(result["window_tflite"]), window_ms, None))
        rows.append(("streaming step (1 frame)", mode, len(result["tflite"]), step_ms, None))
        rows.append(("streaming x 49 steps", mode, None, 49 * step_ms, None))
    if args.fused:
        rows += fused_lstm_rows(frames, features, 64, 12, args.runs, args.threads, calibration)
    print("| model | mode | size KB | median ms | max abs diff vs Keras |")
    print("|---|---|---|---|---|")
    for name, mode, size, ms, error in rows:
        size_text = f"{size / 1024:.0f}" if size else ""
        error_text = f"{error:.4f}" if error is not None else ""
        print(f"| {name} | {mode} | {size_text} | {ms:.3f} | {error_text} |")


if __name__ == "__main__":
    main()
