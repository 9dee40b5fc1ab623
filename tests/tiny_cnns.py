"""Build the small models the converter tests use (run as a script: TensorFlow stays out of the
pytest process, whose other tests fork).

    python tests/tiny_cnns.py OUT_DIR
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def backbone(inputs):
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Conv2D(64, 1, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    return keras.layers.Conv2D(96, 3, padding="same", activation="relu")(x)   # 8x8 for 32x32 input


def classifier():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    x = keras.layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x), name="tiny_classifier")


def detector():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.MaxPooling2D()(backbone(inputs))                         # 4x4 grid
    return keras.Model(inputs, keras.layers.Conv2D(9, 1, activation="sigmoid")(x), name="tiny_detector")


def two_inputs():
    a, b = keras.Input((32, 32, 3)), keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b]))
    return keras.Model([a, b], keras.layers.Dense(4, activation="softmax")(x))


class NeedsFlex(tf.Module):
    """A matrix determinant has no TFLite builtin: converting it needs Flex (MatrixDeterminant)."""

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])
    def __call__(self, x):
        return {"scores": tf.linalg.det(tf.transpose(x[:, :3, :3, :], [0, 3, 1, 2]))}


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = classifier()
    model.save(out / "classifier.keras")
    model.save(out / "classifier.h5")  # legacy HDF5, which Keras 3 still reads
    detector().save(out / "detector.keras")
    two_inputs().save(out / "two_inputs.keras")
    module = NeedsFlex()
    tf.saved_model.save(module, str(out / "needs_flex"), signatures=module.__call__)


if __name__ == "__main__":
    main(sys.argv[1])
