"""Small Keras 3 RNN models shaped like the demo speech model (49 frames x 40 log-mels, 12 classes).

Weights come from a seed; `separable_windows` gives synthetic windows whose class is easy to learn,
so a briefly trained model makes confident predictions (argmax tests need that)."""

import numpy as np

FRAMES, FEATURES, CLASSES = 49, 40, 12


def build(kind, seed=0, frames=FRAMES, stateful=False):
    import keras
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((frames, FEATURES), batch_size=1 if stateful else None)
    if kind == "lstm":
        x = layers.LSTM(48, stateful=stateful)(inputs)
    elif kind == "gru":
        x = layers.GRU(48)(inputs)
    elif kind == "gru2":
        x = layers.GRU(32, return_sequences=True)(inputs)
        x = layers.GRU(32)(x)
    elif kind == "crnn":
        x = layers.Conv1D(32, 3, activation="relu")(inputs)
        x = layers.GRU(48)(x)
    elif kind == "bilstm":
        x = layers.Bidirectional(layers.LSTM(32))(inputs)
    elif kind == "mfcc_crnn":  # [time, features, 1] input, per-frame Dense front, causal conv
        inputs = keras.Input((frames, FEATURES, 1))
        x = layers.Reshape((frames, FEATURES))(inputs)
        x = layers.TimeDistributed(layers.Dense(32, activation="relu"))(x)
        x = layers.Conv1D(32, 3, padding="causal", activation="relu")(x)
        x = layers.LSTM(32)(x)
    else:
        raise ValueError(kind)
    x = layers.Dense(32, activation="relu")(x)
    outputs = layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=kind)


def separable_windows(n, seed, frames=FRAMES):
    """(windows [n, frames, FEATURES], labels): class k lights up a band of features in part of the window."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    x = rng.normal(0, 0.3, (n, frames, FEATURES)).astype(np.float32)
    span = min(15, frames // 2)
    for i, k in enumerate(labels):
        start = rng.integers(0, frames - span)
        x[i, start:start + span, 3 * k:3 * k + 4] += 2.0
    return x, labels


def trained(kind, seed=0, epochs=4):
    """A model of `kind` trained briefly on separable windows (a few seconds on a CPU)."""
    import keras
    model = build(kind, seed)
    x, y = separable_windows(1200, seed + 100)
    if len(model.inputs[0].shape) == 4:
        x = x[..., None]
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model
