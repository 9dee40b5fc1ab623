"""Published models through edgenn's runtime, preprocessing and decoders reproduce their documented
results (../shared/fixtures/SOURCES.md)."""

import wave

import numpy as np
import pytest

from edgenn import bundle
from edgenn.runtime import open_model
from edgenn.vision import VisionTask
from images import read_rgb

CLASSIFICATION = [
    # model, image, expected label id, label, minimum score, top-k
    ("coral/mobilenet_v1_0.25_128_quant.tflite", "coral/cat.bmp", 283, "tiger cat", 0.25, 3),
    ("coral/mobilenet_v2_1.0_224_quant.tflite", "coral/cat.bmp", 286, "Egyptian cat", 0.7, 3),
    ("coral/mobilenet_v2_1.0_224_inat_bird_quant.tflite", "coral/bird.bmp", 659, "Poecile atricapillus", 0.5, 1),
    ("tflite_support/mobilenet_v1_0.25_224_quant.tflite", "tflite_support/burger.jpg", 934, "cheeseburger", 0.94, 1),
    ("coral/keras_lstm_mnist_ptq.tflite", "coral/mnist_nine.bmp", 9, None, 0.7, 3),
]


@pytest.mark.parametrize("model_name,image_name,label_id,label,min_score,k", CLASSIFICATION)
def test_classification_matches_documented(fixtures_dir, model_name, image_name, label_id, label, min_score, k):
    path = fixtures_dir / "models" / model_name
    model = open_model(path)
    assert model.runtime == "litert"
    task = VisionTask.create(model, labels=bundle.read_labels(path), top_k=k)
    results = task.predict(read_rgb(fixtures_dir / "images" / image_name))
    hit = next((r for r in results if r.label_id == label_id), None)
    assert hit is not None, results
    assert hit.score > min_score
    if label:
        assert task.label(hit.label_id).startswith(label)
    if model_name.endswith("mobilenet_v1_0.25_224_quant.tflite"):
        assert abs(hit.score - 0.96) <= 0.02


def _xywh(box):
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


def _iou(box, documented_xywh):
    x, y, w, h = documented_xywh
    width = min(box[2], x + w) - max(box[0], x)
    height = min(box[3], y + h) - max(box[1], y)
    overlap = max(width, 0) * max(height, 0)
    return overlap / ((box[2] - box[0]) * (box[3] - box[1]) + w * h - overlap)


SSD = "tflite_support/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite"
SSD_EXPECTED = {
    # documented by tflite-support: label, score, [x, y, w, h] in pixels, within 0.05 and 3 px with the Task
    # Library's resampler (libyuv). Any other bilinear resize moves this quantized SSD's box edges by whole
    # steps of its box encoding (4-8 px here), so a box counts as the documented one at IoU >= 0.95.
    "dogs.jpg": (2, [("dog", 0.73828, [355, 133, 190, 206]), ("dog", 0.73047, [103, 15, 138, 369])]),
    "cats_and_dogs.jpg": (4, [("cat", 0.64, [54, 396, 393, 196]), ("cat", 0.61, [602, 157, 394, 447]),
                              ("cat", 0.56, [260, 394, 180, 209]), ("dog", 0.50, [389, 197, 278, 409])]),
}


@pytest.mark.parametrize("image_name", sorted(SSD_EXPECTED))
def test_ssd_matches_documented(fixtures_dir, image_name):
    path = fixtures_dir / "models" / SSD
    max_results, expected = SSD_EXPECTED[image_name]
    task = VisionTask.create(open_model(path), labels=bundle.read_labels(path), threshold=0.3,
                             max_detections=max_results)
    found = task.predict(read_rgb(fixtures_dir / "images" / "tflite_support" / image_name))
    assert len(found) == len(expected)
    for label, score, box in expected:
        match = [d for d in found if task.label(d.label_id) == label and abs(d.score - score) <= 0.05
                 and _iou(d.box, box) >= 0.95]
        assert match, (label, score, box, [(task.label(d.label_id), d.score, _xywh(d.box)) for d in found])


def test_yolov8_finds_people_and_bus(fixtures_dir):
    path = fixtures_dir / "models" / "agpl_ultralytics" / "yolov8n_full_integer_quant.tflite"
    task = VisionTask.create(open_model(path), labels=bundle.read_labels(path), threshold=0.25)
    found = task.predict(read_rgb(fixtures_dir / "images/agpl_ultralytics/bus.jpg"))
    assert sorted(task.label(d.label_id) for d in found) == ["bus"] + ["person"] * 4
    # the camera's way: raw int8 outputs, only the candidates that pass dequantized
    outputs = [task.model.output(i, raw=True) for i in range(len(task.model.outputs))]
    assert outputs[0].dtype == np.int8
    raw = task.decode(outputs, task.prepare(read_rgb(fixtures_dir / "images/agpl_ultralytics/bus.jpg"))[1], raw=True)
    assert [(d.label_id, d.score) for d in raw] == [(d.label_id, d.score) for d in found]
    np.testing.assert_allclose([d.box for d in raw], [d.box for d in found], atol=1e-3)


def read_wav_int16(path):
    with wave.open(str(path)) as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def test_yamnet_hears_speech(fixtures_dir):
    path = fixtures_dir / "models" / "tflite_support" / "yamnet_audio_classifier_with_metadata.tflite"
    model = open_model(path)
    samples = read_wav_int16(fixtures_dir / "audio" / "tflite_support" / "speech.wav")[:15600] / 32768.0
    scores = model.run(samples.astype(np.float32))[0].reshape(-1)
    labels = bundle.read_labels(path)
    best = int(scores.argmax())
    assert labels[best] == "Speech"
    assert abs(scores[best] - 0.918) <= 0.02


def test_fused_lstm_state_is_reset_between_sequences(fixtures_dir):
    """The fused LSTM keeps h/c across invoke(); reset_state() makes runs independent."""
    model = open_model(fixtures_dir / "models" / "tflite_micro" / "trained_lstm.tflite")
    digit = read_rgb(fixtures_dir / "images" / "tflite_micro" / "mnist_sample3.png").astype(np.float32) / 255
    first = model.run(digit)[0]
    model.reset_state()
    again = model.run(digit)[0]
    np.testing.assert_allclose(first, again, atol=1e-6)
    assert first.argmax() == 3
