"""Standard TFLite metadata in every bundle: written from the manifest, read back, read by TFLite
Support and MediaPipe (in a venv of their own); the model itself stays exactly as it was."""

import hashlib
import importlib.util
import json
import subprocess

import numpy as np
import pytest
import tflite

from conftest import require, run_cli, venv_python
from edgenn import bundle, tflite_metadata
from edgenn.errors import EdgennError
from edgenn.manifest import new_manifest
from edgenn.modelfile import io_tensors, read_contents

LSTM = "models/tflite_micro/trained_lstm.tflite"  # float, signature def, min_runtime_version, CONVERSION_METADATA
MOBILENET_V2 = "models/coral/mobilenet_v2_1.0_224_quant.tflite"  # 3.6 MB of weights, TFLITE_METADATA of its own
SSD = "models/tflite_support/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite"
BURGER_MODEL = "models/tflite_support/mobilenet_v1_0.25_224_quant.tflite"
BURGER = "images/tflite_support/burger.jpg"
CHEESEBURGER = 934  # tflite-support image_classifier_test.cc: burger.jpg -> 934 "cheeseburger" 0.96
DIGITS = [str(i) for i in range(10)]


def converter_manifest(data, name, task, labels, normalization, **fields):
    """A manifest with the input entries `edgenn convert` writes."""
    inputs = [{"name": t["name"], "shape": t["shape"], "dtype": t["dtype"],
               "quantization": t["quantization"] if t["quantization"]["scale"] else None,
               "layout": "NHWC" if len(t["shape"]) == 4 else "NHW", "color": "rgb", "resize": "stretch",
               "normalization": normalization} for t in io_tensors(data)[0]]
    if labels is not None:
        fields["labels"] = labels
    return new_manifest(name, task, inputs, target="cpu",
                        provenance={"source_sha256": hashlib.sha256(data).hexdigest()}, **fields)


def lstm_bundle(fixtures_dir, labels=DIGITS):
    data = (fixtures_dir / LSTM).read_bytes()
    manifest = converter_manifest(data, "digits", "classify", labels, {"mean": 0, "std": 255},
                                  decoder={"kind": "topk", "top_k": 3}, quantization={"mode": "float32"})
    return data, bundle.make_bundle(data, manifest, labels)


def burger_bundle(fixtures_dir):
    """The published classifier without its own metadata, bundled as edgenn would."""
    published = (fixtures_dir / BURGER_MODEL).read_bytes()
    labels = bundle.read_labels(published)
    manifest = converter_manifest(published, "mobilenet_v1_quant", "classify", labels,
                                  {"mean": 127.5, "std": 127.5}, decoder={"kind": "topk", "top_k": 3},
                                  quantization={"mode": "int8", "io": "uint8"})
    return bundle.make_bundle(bundle.strip_bundle(published), manifest, labels)


def ssd_bundle(fixtures_dir):
    published = (fixtures_dir / SSD).read_bytes()
    labels = bundle.read_labels(published)
    manifest = converter_manifest(published, "coco_ssd", "detect", labels, {"mean": 127.5, "std": 127.5},
                                  decoder={"kind": "ssd_postprocess"})
    return bundle.make_bundle(bundle.strip_bundle(published), manifest, labels)


def metadata_entries(data):
    model = tflite.Model.GetRootAsModel(data, 0)
    return [(model.Metadata(i).Name().decode(), model.Metadata(i).Buffer()) for i in range(model.MetadataLength())]


def unpacked_without_standard_metadata(data):
    """The whole model through TensorFlow's object API, its TFLITE_METADATA entry and buffer taken out
    (the buffer emptied where it stood, dropped when it came last)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    for entry in [m for m in model.metadata or [] if m.name == b"TFLITE_METADATA"]:
        model.metadata.remove(entry)
        if entry.buffer == len(model.buffers) - 1:
            model.buffers.pop()
        else:
            model.buffers[entry.buffer] = schema.BufferT()
    return model


def packed(model):
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def run_all(data, signature=False):
    """Every output of LiteRT on a fixed input (through the signature runner when asked)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    if signature:
        runner = interpreter.get_signature_runner()
        name, detail = next(iter(runner.get_input_details().items()))
        feed = (np.arange(np.prod(detail["shape"])) % 251).reshape(detail["shape"]).astype(detail["dtype"])
        results = runner(**{name: feed / 251 if feed.dtype.kind == "f" else feed})
        return [value for _, value in sorted(results.items())]
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        feed = (np.arange(np.prod(detail["shape"])) % 251).reshape(detail["shape"]).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], feed / 251 if feed.dtype.kind == "f" else feed)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


def test_metadata_round_trips_from_the_manifest(fixtures_dir):
    _, data = lstm_bundle(fixtures_dir)
    meta = tflite_metadata.read_metadata(data)
    assert (meta["name"], meta["version"], meta["author"]) == ("digits", "1", "edgenn")
    assert meta["min_parser_version"] == "1.0.0"
    assert "10 labels" in meta["description"] and meta["license"]
    [image] = meta["inputs"]
    assert image["name"] == io_tensors(data)[0][0]["name"]
    assert (image["color_space"], image["mean"], image["std"]) == ("GRAYSCALE", [0.0], [255.0])
    [scores] = meta["outputs"]
    assert scores["name"] == io_tensors(data)[1][0]["name"]
    assert [(f["name"], f["type"]) for f in scores["files"]] == [("labels.txt", "TENSOR_AXIS_LABELS")]
    assert meta["files"] == []
    assert bundle.associated_files(data)["labels.txt"].decode().split() == DIGITS
    assert bundle.read_manifest(data)["name"] == "digits"  # edgenn's own manifest is untouched


def test_per_channel_normalisation_and_ssd_layout(fixtures_dir):
    data = (fixtures_dir / MOBILENET_V2).read_bytes()
    manifest = converter_manifest(data, "mnv2", "classify", None, {"mean": [123.7, 116.3, 103.5], "std": 58.4})
    image = tflite_metadata.read_metadata(bundle.make_bundle(data, manifest))["inputs"][0]
    assert image["mean"] == pytest.approx([123.7, 116.3, 103.5]) and image["std"] == pytest.approx([58.4])
    assert image["color_space"] == "RGB"
    ssd = tflite_metadata.read_metadata(ssd_bundle(fixtures_dir))
    assert [o["name"] for o in ssd["outputs"]] == ["location", "category", "score", "number of detections"]
    assert [(f["name"], f["type"]) for f in ssd["outputs"][1]["files"]] == [("labels.txt", "TENSOR_VALUE_LABELS")]


@pytest.mark.parametrize("path", [LSTM, MOBILENET_V2, SSD])
def test_model_is_kept_whole_and_runs_identically(fixtures_dir, path):
    """Everything of the model survives (compared through TensorFlow's object API); LiteRT gives
    identical outputs; existing metadata entries are kept and TFLITE_METADATA is there once."""
    require(importlib.util.find_spec("tensorflow"), "tensorflow (pip install -e .[convert])")
    original = bundle.strip_bundle((fixtures_dir / path).read_bytes())
    task = "detect" if path == SSD else "classify"
    manifest = converter_manifest(original, "m", task, None, {"mean": 0, "std": 1})
    data = bundle.make_bundle(original, manifest)
    assert bundle.strip_bundle(data) == original and data.find(original) % 16 == 0  # buffers keep their alignment
    assert packed(unpacked_without_standard_metadata(data)) == packed(unpacked_without_standard_metadata(original))
    before, after = metadata_entries(original), metadata_entries(data)
    assert [n for n, _ in after if n != "TFLITE_METADATA"] == [n for n, _ in before if n != "TFLITE_METADATA"]
    assert [n for n, _ in after].count("TFLITE_METADATA") == 1
    for a, b in zip(run_all(original), run_all(data)):
        np.testing.assert_array_equal(a, b)
    if path == LSTM:
        for a, b in zip(run_all(original, signature=True), run_all(data, signature=True)):
            np.testing.assert_array_equal(a, b)


def test_every_subgraph_survives(tmp_path):
    """A while loop converts to three subgraphs; all come through and the signature still runs."""
    require(importlib.util.find_spec("tensorflow"), "tensorflow (pip install -e .[convert])")
    import tensorflow as tf

    class Loop(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def __call__(self, x):
            return tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * 2.0 + 1.0), [0, x])[1]

    loop = Loop()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([loop.__call__.get_concrete_function()], loop)
    original = converter.convert()
    assert tflite.Model.GetRootAsModel(original, 0).SubgraphsLength() >= 3
    data = bundle.make_bundle(original, new_manifest("loop", "classify", [{"shape": [1, 4]}]))
    assert read_contents(data).subgraphs == read_contents(original).subgraphs
    assert packed(unpacked_without_standard_metadata(data)) == packed(unpacked_without_standard_metadata(original))
    for a, b in zip(run_all(original, signature=True), run_all(data, signature=True)):
        np.testing.assert_array_equal(a, b)


def test_bundle_without_labels_gets_valid_metadata(fixtures_dir):
    original, _ = lstm_bundle(fixtures_dir)
    data = bundle.make_bundle(original, new_manifest("plain", "classify", [{"shape": [1, 28, 28]}]))
    meta = tflite_metadata.read_metadata(data)
    assert meta["name"] == "plain" and meta["outputs"][0]["files"] == [] and meta["files"] == []
    assert sorted(bundle.associated_files(data)) == ["edgenn.json"]
    for a, b in zip(run_all(original), run_all(data)):
        np.testing.assert_array_equal(a, b)


def test_bundling_again_replaces_the_metadata(fixtures_dir):
    original, first = lstm_bundle(fixtures_dir)
    again = bundle.make_bundle(first, new_manifest("renamed", "classify", [{"shape": [1, 28, 28]}]), DIGITS)
    assert [n for n, _ in metadata_entries(again)].count("TFLITE_METADATA") == 1
    buffers = [tflite.Model.GetRootAsModel(data, 0).BuffersLength() for data in (first, again)]
    assert buffers[0] == buffers[1]
    assert tflite_metadata.read_metadata(again)["name"] == "renamed"
    assert bundle.strip_bundle(again) == bundle.strip_bundle(first) == original  # no second front stacked


def test_bad_input_is_one_clear_error(fixtures_dir):
    original = (fixtures_dir / LSTM).read_bytes()
    junk = new_manifest("x", "classify", [{"shape": [1, 28, 28], "layout": "NHW", "normalization": {"mean": "zero", "std": 255}}])
    with pytest.raises(EdgennError, match="normalization 'zero' is not a number") as error:
        bundle.make_bundle(original, junk)
    assert "\n" not in str(error.value)
    truncated = original[:len(original) // 3]  # bundled as it is; loading it names the damage
    damaged = bundle.make_bundle(truncated, new_manifest("x", "classify", [{"shape": [1]}]))
    assert bundle.strip_bundle(damaged) == truncated and bundle.read_manifest(damaged)["name"] == "x"
    _, data = lstm_bundle(fixtures_dir)
    raw = bytes(tflite_metadata._metadata_buffer(data))
    with pytest.raises(EdgennError, match="damaged TFLite metadata"):
        tflite_metadata.read_metadata(data.replace(raw, raw[:8] + b"\xff" * (len(raw) - 8)))


def test_inspect_shows_standard_metadata(fixtures_dir, tmp_path):
    _, data = lstm_bundle(fixtures_dir)
    path = tmp_path / "digits.tflite"
    path.write_bytes(data)
    result = run_cli(["inspect", path])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    line = next(line for line in lines if line.startswith("metadata  "))
    assert line.startswith("metadata  TFLite standard: 'digits' version 1 by edgenn; labels labels.txt "
                           "(TENSOR_AXIS_LABELS on output"), line
    assert line.endswith("GRAYSCALE (x - 0) / 255")
    assert lines.index(line) > next(i for i, text in enumerate(lines) if text.startswith("manifest  digits"))
    report = json.loads(run_cli(["inspect", path, "--json"]).stdout)
    assert report["tflite_metadata"]["author"] == "edgenn" and "TFLITE_METADATA" in report["metadata"]
    plain = run_cli(["inspect", fixtures_dir / "models/coral/keras_lstm_mnist_ptq.tflite"])
    assert "metadata  no standard TFLite metadata" in plain.stdout


# Run in the readers' venv (tflite-support 0.4.4 and MediaPipe); each prints one JSON line.
TFLITE_SUPPORT_PROBE = """
import json, sys
from tflite_support import metadata
from tensorflow_lite_support.metadata.cc.python import _pywrap_metadata_version
displayer = metadata.MetadataDisplayer.with_model_file(sys.argv[1])
buffer = displayer.get_metadata_buffer()
populator = metadata.MetadataPopulator.with_model_buffer(open(sys.argv[2], "rb").read())
populator.load_metadata_buffer(buffer)  # validates tensor counts against the bare model
found = {"files": displayer.get_packed_associated_file_list(), "json": json.loads(displayer.get_metadata_json()),
         "min_parser_version": _pywrap_metadata_version.GetMinimumMetadataParserVersion(buffer)}
if len(sys.argv) > 3:
    from tflite_support.task import vision
    classifier = vision.ImageClassifier.create_from_file(sys.argv[1])
    best = classifier.classify(vision.TensorImage.create_from_file(sys.argv[3])).classifications[0].categories[0]
    found["task_library"] = [best.index, best.category_name, best.score]
print(json.dumps(found))
"""

MEDIAPIPE_PROBE = """
import json, sys
import mediapipe as mp
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision
kind, model, picture = sys.argv[1:4]
image = mp.Image.create_from_file(picture)
base = tasks.BaseOptions(model_asset_path=model)
if kind == "classify":
    options = vision.ImageClassifierOptions(base_options=base, max_results=3)
    classifier = vision.ImageClassifier.create_from_options(options)
    found = [[c.index, c.category_name, c.score] for c in classifier.classify(image).classifications[0].categories]
else:
    options = vision.ObjectDetectorOptions(base_options=base, max_results=4)
    detector = vision.ObjectDetector.create_from_options(options)
    found = [[d.categories[0].index, d.categories[0].category_name, d.categories[0].score,
              [d.bounding_box.origin_x, d.bounding_box.origin_y, d.bounding_box.width, d.bounding_box.height]]
             for d in detector.detect(image).detections]
print(json.dumps(found))
"""


def probe(script, *args):
    python = venv_python(".venv-metadata-readers", "venv-metadata-readers")
    result = subprocess.run([str(python), "-c", script, *map(str, args)], capture_output=True, text=True,
                            timeout=300, env={"PATH": "/usr/bin:/bin", "GLOG_minloglevel": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_tflite_support_reads_the_labels_file(fixtures_dir, tmp_path):
    path, bare = tmp_path / "burger.tflite", tmp_path / "bare.tflite"
    data = burger_bundle(fixtures_dir)
    path.write_bytes(data)
    bare.write_bytes((fixtures_dir / BURGER_MODEL).read_bytes())
    found = probe(TFLITE_SUPPORT_PROBE, path, bare, fixtures_dir / BURGER)
    assert sorted(found["files"]) == ["edgenn.json", "labels.txt"]
    meta = found["json"]
    assert (meta["name"], meta["author"], meta["min_parser_version"]) == ("mobilenet_v1_quant", "edgenn", "1.0.0")
    assert found["min_parser_version"] == meta["min_parser_version"]
    [output] = meta["subgraph_metadata"][0]["output_tensor_metadata"]
    assert [(f["name"], f["type"]) for f in output["associated_files"]] == [("labels.txt", "TENSOR_AXIS_LABELS")]
    [image] = meta["subgraph_metadata"][0]["input_tensor_metadata"]
    assert image["content"]["content_properties"]["color_space"] == "RGB"
    assert image["process_units"][0]["options"] == {"mean": [127.5], "std": [127.5]}
    index, name, score = found["task_library"]
    assert (index, name) == (CHEESEBURGER, "cheeseburger") and score == pytest.approx(0.96, abs=0.02)

    _, unlabelled = lstm_bundle(fixtures_dir, labels=None)
    path.write_bytes(unlabelled)
    bare.write_bytes((fixtures_dir / LSTM).read_bytes())
    found = probe(TFLITE_SUPPORT_PROBE, path, bare)
    assert found["files"] == ["edgenn.json"] and found["json"]["name"] == "digits"
    assert "associated_files" not in found["json"]["subgraph_metadata"][0]["output_tensor_metadata"][0]


def test_mediapipe_classifies_and_detects_with_bundles(fixtures_dir, tmp_path):
    path = tmp_path / "burger.tflite"
    data = burger_bundle(fixtures_dir)
    assert tflite_metadata.read_metadata(data)["author"] == "edgenn"  # the published metadata is gone
    path.write_bytes(data)
    best = probe(MEDIAPIPE_PROBE, "classify", path, fixtures_dir / BURGER)[0]
    assert best[:2] == [CHEESEBURGER, "cheeseburger"] and best[2] == pytest.approx(0.96, abs=0.02)

    # The SSD bundle detects exactly what the published model with its own metadata does.
    path = tmp_path / "ssd.tflite"
    path.write_bytes(ssd_bundle(fixtures_dir))
    picture = fixtures_dir / "images/tflite_support/cats_and_dogs.jpg"
    ours = probe(MEDIAPIPE_PROBE, "detect", path, picture)
    theirs = probe(MEDIAPIPE_PROBE, "detect", fixtures_dir / SSD, picture)
    assert ours == theirs and [d[1] for d in ours[:3]] == ["cat", "cat", "cat"]
