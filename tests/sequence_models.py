"""Keras 3 RNNs over sensor-like sequences (not audio), for tests/test_sequence_convert.py (a script, so
TensorFlow stays out of the pytest process).

    python tests/sequence_models.py OUT_DIR

Writes gru.keras (two GRU layers) and lstm.keras over [N, 49, 40] sequences trained to tell three signal
shapes apart, calibration.npz (x, y, label_names) and heldout.npz (x, y), and heldout_npy/LABEL/N.npy (the
same samples one file each); heldout.npz also holds each model's Keras top-1 (keras_gru, keras_lstm).
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

FRAMES, CHANNELS = 49, 40
LABELS = ("ramp", "sine", "pulses")


def sequences(seed, n):
    """(x [n, FRAMES, CHANNELS] float32, y): a ramp, a sine or square pulses of random rate and phase in a
    random subset of channels, over drifting noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(FRAMES) / FRAMES
    x = rng.normal(0, 0.4, (n, FRAMES, CHANNELS)) + rng.normal(0, 0.5, (n, 1, CHANNELS))
    y = rng.integers(len(LABELS), size=n)
    for i, label in enumerate(y):
        rate, phase = rng.uniform(2, 5), rng.uniform(0, 2 * np.pi)
        signal = (2 * t - 1, np.sin(2 * np.pi * rate * t + phase),
                  np.sign(np.sin(2 * np.pi * rate * t + phase)))[label]
        channels = rng.random(CHANNELS) < 0.5
        x[i][:, channels] += 1.5 * signal[:, None]
    return x.astype(np.float32), y


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    train_x, train_y = sequences(1, 900)
    held_x, held_y = sequences(2, 200)
    layers = {"gru": lambda: [keras.layers.GRU(32, return_sequences=True), keras.layers.GRU(32)],
              "lstm": lambda: [keras.layers.LSTM(32)]}
    keras_top1 = {}
    for name, recurrent in layers.items():
        model = keras.Sequential([keras.Input((FRAMES, CHANNELS)), *recurrent(),
                                  keras.layers.Dense(len(LABELS), activation="softmax")], name=name)
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
        model.fit(train_x, train_y, epochs=6, batch_size=32, verbose=0)
        print(name, "held-out accuracy", float(np.mean(model.predict(held_x, verbose=0).argmax(1) == held_y)))
        model.save(out / f"{name}.keras")
        keras_top1[f"keras_{name}"] = model.predict(held_x, verbose=0).argmax(1)
    np.savez(out / "calibration.npz", x=train_x[:200], y=train_y[:200], label_names=np.array(LABELS))
    np.savez(out / "heldout.npz", x=held_x, y=held_y, **keras_top1)
    for i, (sample, label) in enumerate(zip(held_x[:60], held_y[:60])):
        folder = out / "heldout_npy" / LABELS[label]
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{i:03d}.npy", sample)


if __name__ == "__main__":
    main(sys.argv[1])
