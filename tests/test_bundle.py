"""The bundle format: manifest and labels inside the .tflite, validation, embedded and sidecar labels."""

import json
import zipfile

import pytest

from edgenn import bundle
from edgenn.errors import EdgennError
from edgenn.manifest import FORMAT_VERSION, new_manifest

MODEL = "models/coral/keras_lstm_mnist_ptq.tflite"


@pytest.fixture
def model_bytes(fixtures_dir):
    return (fixtures_dir / MODEL).read_bytes()


def manifest(**fields):
    return new_manifest("digits", "classify", [{"shape": [1, 28, 28], "dtype": "uint8"}], **fields)


def test_round_trip(model_bytes, tmp_path):
    labels = [str(i) for i in range(10)]
    written = manifest(labels=labels, quantization={"mode": "int8"}, evaluation={"top1_agreement": 1.0})
    path = tmp_path / "digits.tflite"
    data = bundle.save_bundle(path, model_bytes, written, labels)
    assert path.read_bytes() == data
    assert bundle.read_manifest(path) == written
    assert bundle.read_labels(path) == labels
    assert bundle.strip_bundle(data) == model_bytes
    # Re-bundling replaces our entries instead of stacking a second copy.
    again = bundle.make_bundle(data, manifest(version="2"), labels)
    assert bundle.read_manifest(again)["version"] == "2"
    assert sorted(bundle.associated_files(again)) == ["edgenn.json", "labels.txt"]


def test_standard_library_reads_it(model_bytes, tmp_path):
    path = tmp_path / "digits.tflite"
    bundle.save_bundle(path, model_bytes, manifest(), ["a"])
    with zipfile.ZipFile(path) as archive:
        assert json.loads(archive.read("edgenn.json"))["format_version"] == FORMAT_VERSION


def test_existing_associated_files_are_kept(fixtures_dir):
    data = (fixtures_dir / "models/tflite_support/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite").read_bytes()
    result = bundle.make_bundle(data, new_manifest("ssd", "detect", [{"shape": [1, 300, 300, 3]}]))
    assert sorted(bundle.associated_files(result)) == ["edgenn.json", "labelmap.txt"]
    assert bundle.read_labels(result)[:2] == ["person", "bicycle"]


def corrupt(model_bytes, tmp_path, text):
    path = tmp_path / "broken.tflite"
    with open(path, "wb") as handle:
        handle.write(model_bytes)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("edgenn.json", text)
    return path


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"format_version": 99, "name": "x", "version": "1", "task": "classify", "inputs": []}),
     "newer than this edgenn"),
    (json.dumps({"format_version": 1, "name": "x", "version": "1", "inputs": []}), "missing field 'task'"),
    (json.dumps({"format_version": 1, "name": "x", "version": "1", "task": "dance", "inputs": []}), "unknown task"),
    (json.dumps([1, 2]), "not a JSON object"),
])
def test_corrupt_manifest_is_one_clear_error(model_bytes, tmp_path, text, message):
    path = corrupt(model_bytes, tmp_path, text)
    with pytest.raises(EdgennError, match=message) as error:
        bundle.read_manifest(path)
    assert "\n" not in str(error.value)


def test_embedded_labels_of_published_models(fixtures_dir):
    coral = bundle.read_labels(fixtures_dir / "models/coral/mobilenet_v2_1.0_224_quant.tflite")
    sidecar = bundle.load_labels_file(fixtures_dir / "labels/coral/imagenet_labels.txt")
    assert coral == sidecar and len(coral) == 1001
    yolo = bundle.read_labels(fixtures_dir / "models/agpl_ultralytics/yolov8n_full_integer_quant.tflite")
    assert yolo[:2] == ["person", "bicycle"] and len(yolo) == 80
    assert bundle.read_labels(fixtures_dir / MODEL) is None


def test_numbered_label_files(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("0 person\n1 bicycle\n3 car\n")
    assert bundle.load_labels_file(path) == ["person", "bicycle", "", "car"]


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(EdgennError, match="output folder does not exist"):
        bundle.write_atomic(tmp_path / "missing" / "x.tflite", b"data")
    with pytest.raises(EdgennError, match="not a TFLite model"):
        bundle.save_bundle(tmp_path / "x.tflite", b"nonsense", manifest())
    assert list(tmp_path.iterdir()) == []
