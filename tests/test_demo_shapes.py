"""The demo data generator, the edgenn_grid decoder, NMS, mAP, and the committed demo CNNs."""

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require
from edgenn import demo_shapes
from edgenn.adapters import grid
from edgenn.adapters.nms import class_aware_nms, nms
from edgenn.metrics import iou, mean_average_precision

DEMO = Path(demo_shapes.__file__).parent / "demo"


def test_generator_is_deterministic():
    a = demo_shapes.detection_sample(np.random.default_rng(7), 96, 4)
    b = demo_shapes.detection_sample(np.random.default_rng(7), 96, 4)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    c = demo_shapes.classification_sample(np.random.default_rng(7), 64)
    d = demo_shapes.classification_sample(np.random.default_rng(7), 64)
    assert np.array_equal(c[0], d[0]) and c[1] == d[1]
    assert not np.array_equal(c[0], demo_shapes.classification_sample(np.random.default_rng(8), 64)[0])


def test_samples_have_the_promised_types():
    img, label = demo_shapes.classification_sample(np.random.default_rng(0), 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and 0 <= label < len(demo_shapes.LABELS)
    img, objects = demo_shapes.detection_sample(np.random.default_rng(0), 96, 4)
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8 and 1 <= len(objects) <= 4


def test_boxes_are_tight_and_apart():
    """Boxes lie inside the image, do not overlap, and hug what was drawn."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        _, objects = demo_shapes.detection_sample(rng, 96, 4)
        for k, (label, box) in enumerate(objects):
            assert 0 <= box[0] < box[2] <= 95 and 0 <= box[1] < box[3] <= 95
            assert all(iou(box, other) == 0 for _, other in objects[k + 1:])
    # draw one shape in white on black and compare its pixel extent with the box
    for label_id in range(len(demo_shapes.LABELS)):
        canvas = np.zeros((100, 100, 3), np.uint8)
        box = demo_shapes.draw_shape(np.random.default_rng(0), canvas, label_id, (50, 45), 30, 0.4, 1.2,
                                     colour=(255, 255, 255))
        ys, xs = np.nonzero(canvas[..., 0] > 127)
        assert np.allclose([xs.min(), ys.min(), xs.max(), ys.max()], box, atol=1.5)


def test_image_folder_has_one_subfolder_per_label(tmp_path):
    demo_shapes.write_image_folder(tmp_path, 12, seed=1, size=32)
    files = sorted(tmp_path.rglob("*.png"))
    assert len(files) == 12 and {f.parent.name for f in files} <= set(demo_shapes.LABELS)
    assert cv2.imread(str(files[0])).shape == (32, 32, 3)


def test_demo_video_and_its_ground_truth(tmp_path):
    path = demo_shapes.write_demo_video(tmp_path / "demo.mp4", seconds=1, fps=10, seed=2)
    truth = json.loads(path.with_suffix(".json").read_text())
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == len(truth["frames"]) == 10 and frames[0].shape == (240, 320, 3)
    for entry in truth["frames"]:
        assert len(entry["objects"]) == 3
        for obj in entry["objects"]:
            x0, y0, x1, y1 = obj["box"]
            assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
            assert demo_shapes.LABELS[obj["class"]] == obj["label"]


def test_grid_decode_of_a_hand_built_tensor():
    out = np.zeros((1, 4, 4, 5 + 3), np.float32)
    # cell row 1, column 2: centre at its middle (tx = ty = 0.5), box 1/4 x 1/2 of the image, class 2
    out[0, 1, 2, :5] = [0.9, 0.5, 0.5, 0.25, 0.5]
    out[0, 1, 2, 5:] = [0.1, 0.2, 0.8]
    # a weaker, overlapping duplicate of the same class in the next cell: NMS removes it
    out[0, 1, 3, :5] = [0.6, 0.1, 0.5, 0.25, 0.5]  # centre x 135: IoU 2/3
    out[0, 1, 3, 7] = 0.9
    # below the threshold
    out[0, 3, 0, :5] = [0.2, 0.5, 0.5, 0.1, 0.1]
    out[0, 3, 0, 5] = 1.0
    dets = grid.decode(out, score_threshold=0.3, iou_threshold=0.45, max_detections=10, image_size=(200, 100))
    assert len(dets) == 1
    assert dets[0].label_id == 2 and dets[0].score == pytest.approx(0.72)
    # centre (2.5 / 4, 1.5 / 4) of a 200 x 100 image = (125, 37.5); size 50 x 50
    assert dets[0].box == pytest.approx([100, 12.5, 150, 62.5])


def test_grid_encode_decode_round_trip():
    rng = np.random.default_rng(5)
    for _ in range(20):
        _, objects = demo_shapes.detection_sample(rng, 96, 4)
        target = grid.encode(objects, 12, len(demo_shapes.LABELS), (96, 96))
        dets = grid.decode(target, 0.5, 0.45, 10, image_size=(96, 96))
        assert sorted(d.label_id for d in dets) == sorted(label for label, _ in objects)
        for label, box in objects:
            assert max(iou(box, d.box) for d in dets) > 0.999


def test_nms_keeps_the_best_of_each_overlapping_group():
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]]
    scores = [0.8, 0.9, 0.5, 0.3]
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.95).tolist() == [1, 0, 2, 3]
    assert nms(boxes, scores, 0.5, max_detections=1).tolist() == [1]
    assert class_aware_nms(boxes, scores, [0, 1, 0, 0], 0.5).tolist() == [1, 0, 2]
    assert nms(np.zeros((0, 4)), [], 0.5).tolist() == []


def test_nms_small_and_large_sets_follow_one_rule():
    """Below SMALL_SET boxes nms() and class_aware_nms() run in plain Python; a larger set of the same boxes,
    padded with far-away low scorers, must keep the same ones."""
    from edgenn.adapters.nms import SMALL_SET
    rng = np.random.default_rng(3)
    for _ in range(20):
        corners = rng.uniform(0, 50, size=(SMALL_SET, 2))
        boxes = np.hstack([corners, corners + rng.uniform(5, 30, size=(SMALL_SET, 2))])
        scores = rng.uniform(0.5, 1, size=SMALL_SET)
        padding = np.tile([1000.0, 1000.0, 1001.0, 1001.0], (SMALL_SET, 1)) + 10 * np.arange(SMALL_SET)[:, None]
        small = nms(boxes, scores, 0.4, max_detections=10).tolist()
        large = nms(np.vstack([boxes, padding]), np.concatenate([scores, np.full(SMALL_SET, 0.1)]), 0.4,
                    max_detections=10).tolist()
        assert small == large[:len(small)] and len(small) >= 1
        classes = rng.integers(0, 3, size=SMALL_SET)
        small = class_aware_nms(boxes, scores, classes, 0.4, max_detections=10).tolist()
        large = class_aware_nms(np.vstack([boxes, padding]), np.concatenate([scores, np.full(SMALL_SET, 0.1)]),
                                np.concatenate([classes, np.zeros(SMALL_SET, int)]), 0.4, max_detections=10).tolist()
        assert small == large[:len(small)] and len(small) >= 1


def test_iou():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0


def test_mean_average_precision_on_known_cases():
    truth = [[(0, [0, 0, 10, 10]), (1, [20, 20, 30, 30])], [(0, [50, 50, 60, 60])]]
    perfect = [[(0, 0.9, [0, 0, 10, 10]), (1, 0.8, [20, 20, 30, 30])], [(0, 0.7, [50, 50, 60, 60])]]
    assert mean_average_precision(perfect, truth) == 1
    # class 0: a false positive ranked between the two hits -> precision 1, then 2/3 at recall 1
    ranked = [[(0, 0.9, [0, 0, 10, 10]), (0, 0.8, [70, 70, 80, 80]), (1, 0.8, [20, 20, 30, 30])],
              [(0, 0.7, [50, 50, 60, 60])]]
    mean, per_class = mean_average_precision(ranked, truth, per_class=True)
    assert per_class == {0: pytest.approx(0.5 * 1 + 0.5 * 2 / 3), 1: 1.0}
    assert mean == pytest.approx((5 / 6 + 1) / 2)
    # a wrong class, a poorly placed box and a duplicate count as misses
    wrong = [[(1, 0.9, [0, 0, 10, 10]), (1, 0.8, [25, 25, 35, 35])], [(0, 0.7, [50, 50, 60, 60]),
                                                                       (0, 0.6, [50, 50, 60, 60])]]
    mean, per_class = mean_average_precision(wrong, truth, per_class=True)
    assert per_class == {0: pytest.approx(0.5), 1: 0.0}
    assert mean_average_precision([[], []], truth) == 0


@pytest.fixture(scope="session")
def keras_models():
    require(importlib.util.find_spec("keras"), "keras (pip install -e .[convert])")
    import keras

    card = json.loads((DEMO / "shapes.json").read_text())
    return card, {kind: keras.models.load_model(DEMO / card[kind]["file"], compile=False)
                  for kind in ("classifier", "detector")}


def test_demo_models_are_small_and_described():
    card = json.loads((DEMO / "shapes.json").read_text())
    assert card["labels"] == list(demo_shapes.LABELS)
    assert card["detector"]["decoder"]["kind"] == "edgenn_grid"
    for kind in ("classifier", "detector"):
        assert (DEMO / card[kind]["file"]).stat().st_size <= 1_200_000


def test_committed_classifier_reaches_its_accuracy(keras_models):
    card, models = keras_models
    size = card["classifier"]["input_size"][0]
    rng = np.random.default_rng([99, 1])
    pairs = [demo_shapes.classification_sample(rng, size) for _ in range(1000)]  # ±0.5 pp
    x = np.stack([p[0] for p in pairs]).astype(np.float32) / 255
    predicted = models["classifier"].predict(x, verbose=0).argmax(axis=1)
    assert np.mean(predicted == [p[1] for p in pairs]) >= 0.97


def test_committed_detector_reaches_its_map(keras_models):
    card, models = keras_models
    size, decoder = card["detector"]["input_size"][0], card["detector"]["decoder"]
    rng = np.random.default_rng([99, 2])
    pairs = [demo_shapes.detection_sample(rng, size, card["detector"]["max_objects"]) for _ in range(200)]
    outputs = models["detector"].predict(np.stack([p[0] for p in pairs]).astype(np.float32) / 255, verbose=0)
    predictions = [grid.decode(o, decoder["score_threshold"], decoder["iou_threshold"],
                               decoder["max_detections"], (size, size)) for o in outputs]
    assert mean_average_precision(predictions, [p[1] for p in pairs]) >= 0.85
