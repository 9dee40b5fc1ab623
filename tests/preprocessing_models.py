"""Keras CNNs that carry their own input preprocessing, for tests/test_preprocessing.py (run as a script so
TensorFlow stays out of the pytest process).

    python tests/preprocessing_models.py OUT_DIR

Writes three small CNNs trained on 0-255 pictures of a coloured blob (the class is its colour), each starting with a different preprocessing
layer (Rescaling 1/255, Rescaling to [-1, 1], an adapted Normalization); `calibration.npz` (labelled
pictures), `heldout.npz` (other pictures with each model's Keras top-1 on the raw pixels), and
`applications.json`: what edgenn reads from keras.applications architectures (untrained, weights=None).
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edgenn.converters import keras_model, preprocessing  # noqa: E402

SIZE = 32
COLOURS = {"red": (200, 50, 40), "green": (50, 190, 60), "blue": (40, 60, 210), "yellow": (210, 200, 40)}


def pictures(seed, n):
    """(uint8 pictures [n, SIZE, SIZE, 3], class indices): a blob of one colour anywhere on grey noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    images, labels = [], []
    for _ in range(n):
        label = int(rng.integers(len(COLOURS)))
        image = rng.uniform(20, 140, (SIZE, SIZE, 1)) + rng.normal(0, 12, (SIZE, SIZE, 3))
        radius = rng.uniform(5, 11)
        centre = rng.uniform(radius, SIZE - radius, 2)
        blob = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2
        image[blob] = np.array(list(COLOURS.values())[label]) * rng.uniform(0.7, 1.15) + rng.normal(0, 15, (blob.sum(), 3))
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        labels.append(label)
    return np.stack(images), np.array(labels)


def cnn(name, first_layer):
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        first_layer,
        keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(48, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(COLOURS), activation="softmax"),
    ], name=name)


def tutorial(shape):
    """The Keras transfer-learning tutorial's layout: an augmentation model, then Rescaling to [-1, 1]."""
    augmentation = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1)],
                                    name="data_augmentation")
    inputs = keras.Input(shape)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(augmentation(inputs))
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x)))
    return keras.Model(inputs, outputs, name="tutorial")


def detected(model, folder):
    """What the converter reads from a model, after the converter's own loading (batch fixed to 1)."""
    path = folder / f"{model.name}.keras"
    model.save(path)
    found = preprocessing.from_model(keras_model.load(path).keras_model)
    path.unlink()
    return None if found is None else {"mean": found.mean, "std": found.std, "color": found.color,
                                       "source": found.source}


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    train_x, train_y = pictures(1, 600)
    normalization = keras.layers.Normalization()
    normalization.adapt(train_x.astype(np.float32))
    models = [cnn("rescale_255", keras.layers.Rescaling(1 / 255)),
              cnn("minus1_to_1", keras.layers.Rescaling(1 / 127.5, offset=-1)),
              cnn("normalization", normalization)]
    held_x, held_y = pictures(2, 300)
    truth = {}
    for model in models:
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(train_x.astype(np.float32), train_y, epochs=6, batch_size=32, verbose=0)
        model.save(out / f"{model.name}.keras")
        truth[model.name] = model.predict(held_x.astype(np.float32), verbose=0).argmax(1)
        print(model.name, "held-out accuracy", float(np.mean(truth[model.name] == held_y)))
    np.savez(out / "calibration.npz", images=train_x[:120], labels=train_y[:120],
             label_names=np.array(list(COLOURS)))
    np.savez(out / "heldout.npz", images=held_x, labels=held_y, **{f"keras_{k}": v for k, v in truth.items()})

    shape = (96, 96, 3)
    apps = keras.applications
    base = apps.MobileNetV2(input_shape=shape, include_top=False, weights=None)
    transfer = keras.Sequential([keras.Input(shape), base, keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(3, activation="softmax")], name="my_transfer_model")
    found = {"MobileNetV2": detected(apps.MobileNetV2(input_shape=shape, weights=None), out),
             "MobileNetV2 transfer": detected(transfer, out),
             "MobileNetV3Small": detected(apps.MobileNetV3Small(input_shape=shape, weights=None,
                                                                include_preprocessing=True), out),
             "EfficientNetB0": detected(apps.EfficientNetB0(input_shape=shape, weights=None), out),
             "ResNet50": detected(apps.ResNet50(input_shape=shape, weights=None), out),
             "plain CNN": detected(keras.Sequential([keras.Input(shape), keras.layers.Conv2D(4, 3)]), out),
             "tutorial": detected(tutorial(shape), out)}
    (out / "applications.json").write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
