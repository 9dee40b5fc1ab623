"""Train the demo CNNs on generated shapes: a classifier and a detector with edgenn's grid head.

    .venv/bin/python training/train_shapes.py --seed 0
    .venv/bin/python training/train_shapes.py --seed 0 --model classifier   # one model (same result)

Each model has its own seeds, so the two can train in parallel processes; the training time of
each is recorded in shapes.json.

Writes edgenn/demo/shapes_classifier.keras, edgenn/demo/shapes_detector.keras and
edgenn/demo/shapes.json (labels, input sizes, normalisation, decoder, seed, held-out metrics).
Data come from edgenn.demo_shapes, generated in memory from the seed; same seed, same models
(TensorFlow's deterministic ops are switched on).

Both models take float RGB input x = pixel / 255 (normalisation mean 0, std 255) and use only
layers that every TFLite runtime, full int8 and the Edge TPU handle: Conv2D, BatchNormalization
(folded into the convolutions), ReLU, MaxPooling2D, GlobalAveragePooling2D, Dense, sigmoid/softmax.
Regular 3x3 convolutions, no depthwise ones: XNNPACK runs them much faster in int8 than in float
(depthwise ones gain nothing), and their int8 weights outweigh the per-channel quantization
parameters, so the int8 file is about a quarter of the float32 one (BENCHMARKS.md, "CNN converter").
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from edgenn import demo_shapes  # noqa: E402
from edgenn.adapters import grid  # noqa: E402
from edgenn.metrics import mean_average_precision  # noqa: E402

OUT_DIR = Path(__file__).resolve().parents[1] / "edgenn" / "demo"
CLASSIFIER_SIZE = 96
DETECTOR_SIZE = 128
GRID = 16  # detector output stride 8
MAX_OBJECTS = 4
DECODER = {"kind": "edgenn_grid", "grid": GRID, "num_classes": len(demo_shapes.LABELS),
           "score_threshold": 0.3, "iou_threshold": 0.45, "max_detections": 10}
NORMALISATION = {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0]}


def conv_bn(x, filters, kernel=3, strides=1):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def build_classifier():
    inputs = keras.Input((CLASSIFIER_SIZE, CLASSIFIER_SIZE, 3), name="image")
    x = conv_bn(inputs, 24, strides=2)         # 48x48
    x = conv_bn(x, 48, strides=2)              # 24x24
    x = conv_bn(x, 64)
    x = keras.layers.MaxPooling2D()(x)         # 12x12
    x = conv_bn(x, 96)
    x = keras.layers.MaxPooling2D()(x)         # 6x6
    x = conv_bn(x, 96)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(demo_shapes.LABELS), activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="shapes_classifier")


def build_detector():
    inputs = keras.Input((DETECTOR_SIZE, DETECTOR_SIZE, 3), name="image")
    x = conv_bn(inputs, 24, strides=2)         # 64x64
    x = conv_bn(x, 48, strides=2)              # 32x32
    x = conv_bn(x, 64, strides=2)              # 16x16, receptive field 15 px
    for _ in range(3):                         # each conv widens the receptive field by 16 px
        x = conv_bn(x, 96)
    outputs = keras.layers.Conv2D(5 + len(demo_shapes.LABELS), 1, activation="sigmoid", name="grid")(x)
    return keras.Model(inputs, outputs, name="shapes_detector")


def detection_loss(y_true, y_pred):
    """Binary cross-entropy on every sigmoid output: objectness everywhere (positives weighted
    up), box and class channels only in the cells that hold an object."""
    ops = keras.ops
    p = ops.clip(y_pred, 1e-6, 1 - 1e-6)
    bce = -(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p))
    obj = y_true[..., 0]
    objectness = bce[..., 0] * (1 + 4 * obj)
    box = ops.sum(bce[..., 1:5], axis=-1) * obj * 5
    cls = ops.sum(bce[..., 5:], axis=-1) * obj * 2
    return ops.sum(objectness + box + cls, axis=(1, 2))


def classification_data(rng, n):
    pairs = [demo_shapes.classification_sample(rng, CLASSIFIER_SIZE) for _ in range(n)]
    return np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs], np.int32)


def detection_data(rng, n):
    pairs = [demo_shapes.detection_sample(rng, DETECTOR_SIZE, MAX_OBJECTS) for _ in range(n)]
    targets = np.stack([grid.encode(objs, GRID, len(demo_shapes.LABELS), (DETECTOR_SIZE,) * 2)
                        for _, objs in pairs])
    return np.stack([p[0] for p in pairs]), targets, [objs for _, objs in pairs]


def symmetry(image, target, r, grid_target):
    """One of the 8 symmetries of the square, chosen by the low bits of r: every shape class is
    invariant under them, so each epoch sees new images. A grid target moves with the image:
    flips mirror tx (ty), a transpose swaps x and y channels."""
    def maybe(bit, fn, args):
        return tf.cond(tf.bitwise.bitwise_and(r, bit) > 0, lambda: fn(*args), lambda: args)

    def hflip(img, t):
        return img[:, ::-1], (tf.concat([t[:, ::-1, :1], 1 - t[:, ::-1, 1:2], t[:, ::-1, 2:]], -1)
                              if grid_target else t)

    def vflip(img, t):
        return img[::-1], (tf.concat([t[::-1, :, :2], 1 - t[::-1, :, 2:3], t[::-1, :, 3:]], -1)
                           if grid_target else t)

    def transpose(img, t):
        img = tf.transpose(img, (1, 0, 2))
        if not grid_target:
            return img, t
        t = tf.transpose(t, (1, 0, 2))
        return img, tf.gather(t, [0, 2, 1, 4, 3, *range(5, t.shape[-1])], axis=-1)

    args = maybe(1, hflip, (image, target))
    args = maybe(2, vflip, args)
    return maybe(4, transpose, args)


def dataset(images, targets, batch, seed=None, grid_target=False):
    """uint8 images stay uint8 in memory; with a seed the data are shuffled and augmented
    (symmetry()) each epoch, then scaled to x / 255 per batch."""
    ds = tf.data.Dataset.from_tensor_slices((images, targets))
    if seed is not None:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        noise = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, noise).map(lambda xy, r: symmetry(*xy, r, grid_target))
    return ds.batch(batch).map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y)).prefetch(2)


def fit(model, loss, train, epochs, lr, steps, metrics=()):
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs * steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=list(metrics))
    model.fit(train, epochs=epochs, verbose=2)


def save(model, path):
    """Save an uncompiled copy, so loading needs no custom loss."""
    keras.Model(model.inputs, model.outputs, name=model.name).save(path)


def detector_map(model, images, truth):
    outputs = model.predict(images.astype(np.float32) / 255.0, batch_size=128, verbose=0)
    params = {k: DECODER[k] for k in ("score_threshold", "iou_threshold", "max_detections")}
    predictions = [grid.decode(o, image_size=(DETECTOR_SIZE, DETECTOR_SIZE), **params) for o in outputs]
    return mean_average_precision(predictions, truth, iou=0.5)


def train_classifier(args):
    train_rng, test_rng = (np.random.default_rng([args.seed, *part]) for part in ((1, 0), (2,)))
    x, y = classification_data(train_rng, args.classifier_samples)
    x_test, y_test = classification_data(test_rng, args.held_out)
    classifier = build_classifier()
    batch = 64
    fit(classifier, "sparse_categorical_crossentropy", dataset(x, y, batch, args.seed),
        args.classifier_epochs, 3e-3, -(-len(x) // batch), metrics=["accuracy"])
    probs = classifier.predict(x_test.astype(np.float32) / 255.0, batch_size=256, verbose=0)
    accuracy = float(np.mean(probs.argmax(axis=1) == y_test))
    print(f"classifier: {classifier.count_params()} params, held-out accuracy {accuracy:.4f}")
    save(classifier, args.out_dir / "shapes_classifier.keras")
    return {"file": "shapes_classifier.keras", "task": "classify",
            "input_size": [CLASSIFIER_SIZE, CLASSIFIER_SIZE], "params": classifier.count_params(),
            "decoder": {"kind": "topk"}, "held_out": {"accuracy": round(accuracy, 4)},
            "training": {"samples": args.classifier_samples, "epochs": args.classifier_epochs}}


def train_detector(args):
    train_rng, test_rng = (np.random.default_rng([args.seed, *part]) for part in ((1, 1), (2,)))
    x, t, _ = detection_data(train_rng, args.detector_samples)
    x_test, _, truth = detection_data(test_rng, args.held_out)
    detector = build_detector()
    batch = 32  # more updates per sample: the detector is what the time budget is spent on
    fit(detector, detection_loss, dataset(x, t, batch, args.seed, grid_target=True), args.detector_epochs,
        3e-3, -(-len(x) // batch))
    map50 = detector_map(detector, x_test, truth)
    print(f"detector: {detector.count_params()} params, held-out mAP@0.5 {map50:.4f}")
    save(detector, args.out_dir / "shapes_detector.keras")
    return {"file": "shapes_detector.keras", "task": "detect",
            "input_size": [DETECTOR_SIZE, DETECTOR_SIZE], "params": detector.count_params(),
            "max_objects": MAX_OBJECTS, "decoder": DECODER, "held_out": {"map50": round(map50, 4)},
            "training": {"samples": args.detector_samples, "epochs": args.detector_epochs}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--model", choices=("classifier", "detector", "both"), default="both",
                        help="train one model (its own seeds: the result is the same as in a 'both' run)")
    parser.add_argument("--classifier-samples", type=int, default=8000)
    parser.add_argument("--classifier-epochs", type=int, default=16)
    parser.add_argument("--detector-samples", type=int, default=8000)
    parser.add_argument("--detector-epochs", type=int, default=12)
    parser.add_argument("--held-out", type=int, default=1000)
    args = parser.parse_args()

    tf.config.experimental.enable_op_determinism()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    card_path = args.out_dir / "shapes.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    card.update({"labels": list(demo_shapes.LABELS), "seed": args.seed, "colour_order": "RGB",
                 "normalisation": NORMALISATION, "resize": "stretch"})
    for kind, train in (("classifier", train_classifier), ("detector", train_detector)):
        if args.model in (kind, "both"):
            keras.utils.set_random_seed(args.seed)
            start = time.time()
            entry = train(args)
            entry["held_out"].update({"samples": args.held_out, "seed": [args.seed, 2]})
            entry["training"].update({"seconds": round(time.time() - start), "tensorflow": tf.__version__,
                                      "keras": keras.__version__, "script": "training/train_shapes.py"})
            card[kind] = entry
    card.pop("training", None)  # older cards: one entry for both models
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main()
