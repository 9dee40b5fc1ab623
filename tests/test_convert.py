"""`edgenn convert` on Keras CNNs: every mode, calibration, evaluation, Edge TPU report, bad input.

TensorFlow never loads in the pytest process (other tests fork): models are built by
tests/tiny_cnns.py in a subprocess and every conversion runs in the converter's spawned child.
Conversions happen once per session (convert_all: one child for the whole batch)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, require, run_cli
from edgenn import demo_shapes
from edgenn.bundle import read_manifest
from edgenn.converters.pipeline import Options, convert_all
from edgenn.runtime import open_model

MODES = [("float32", "float"), ("dynamic", "float"), ("float16", "float"), ("int8", "float"),
         ("int8", "uint8"), ("int8", "int8"), ("int16x8", "float")]
DEMO = REPO / "edgenn" / "demo"
SHAPES_DATA = REPO / "tests" / "shapes_data.py"
TFLITE_RUNTIME_PYTHON = REPO / ".venv-tflite-runtime" / "bin" / "python"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Small models and calibration data of every kind."""
    root = tmp_path_factory.mktemp("tiny")
    subprocess.run([sys.executable, str(REPO / "tests" / "tiny_cnns.py"), str(root)], check=True,
                   capture_output=True, timeout=300)
    rng = np.random.default_rng(5)
    pictures = [demo_shapes.classification_sample(rng, 48) for _ in range(50)]
    np.savez(root / "classes.npz", images=np.stack([p for p, _ in pictures]),
             labels=np.array([c for _, c in pictures]), label_names=np.array(demo_shapes.LABELS))
    scenes = [demo_shapes.detection_sample(rng, 64, 3) for _ in range(40)]
    boxes = np.zeros((40, 3, 4), np.float32)
    box_labels = np.full((40, 3), -1)
    for i, (_, objects) in enumerate(scenes):
        for k, (label, box) in enumerate(objects):
            boxes[i, k], box_labels[i, k] = box, label
    np.savez(root / "scenes.npz", images=np.stack([p for p, _ in scenes]), boxes=boxes, box_labels=box_labels)
    demo_shapes.write_image_folder(root / "folder", 30, seed=7, size=40)
    (root / "no_images").mkdir()
    (root / "no_images" / "notes.txt").write_text("no pictures here\n")
    np.savez(root / "wrong_shape.npz", images=np.zeros((4, 20, 20, 3), np.float32))
    np.savez(root / "unlabelled.npz", images=np.stack([p for p, _ in pictures]))
    (root / "not_a_model.keras").write_bytes(b"this is not a model\n")
    return root


@pytest.fixture(scope="session")
def converted(tiny):
    """{(model, mode, io): Result} for the tiny models, plus the demo CNNs when they exist."""
    out = tiny / "out"
    out.mkdir()
    jobs, keys = [], []
    for model, data in (("classifier", "classes.npz"), ("detector", "scenes.npz")):
        for mode, io in MODES:
            # force: the tiny models are untrained, so they score at chance on labelled data
            options = Options(quantize=mode, io=io, calibration=str(tiny / data), num_calibration=40, force=True)
            if (model, mode, io) == ("classifier", "int8", "float"):
                options.debug_layers = str(out / "classifier_layers")
            keys.append((model, mode, io))
            jobs.append((tiny / f"{model}.keras", out / f"{model}_{mode}_{io}.tflite", options))
    keys.append(("classifier_h5", "float16", "float"))
    jobs.append((tiny / "classifier.h5", out / "classifier_h5.tflite", Options(quantize="float16")))
    keys.append(("classifier", "folder", "float"))
    jobs.append((tiny / "classifier.keras", out / "classifier_folder.tflite",
                 Options(calibration=str(tiny / "folder"), force=True)))
    if (DEMO / "shapes_classifier.keras").exists() and (DEMO / "shapes_detector.keras").exists():
        card = json.loads((DEMO / "shapes.json").read_text())
        for model, kind, n_eval in (("classifier", "classifier", 400), ("detector", "detector", 300)):
            for mode, io in MODES:
                accept = (mode, io) == ("int8", "float")
                options = Options(quantize=mode, io=io, calibration=f"{SHAPES_DATA}:{kind}_calibration",
                                  eval=f"{SHAPES_DATA}:{kind}_heldout", num_calibration=200,
                                  num_eval=n_eval if accept or mode == "float32" else 30,
                                  labels=str(out / "shapes_labels.txt"),
                                  mean=card["normalisation"]["mean"], std=card["normalisation"]["std"])
                keys.append((f"demo_{model}", mode, io))
                jobs.append((DEMO / card[kind]["file"], out / f"demo_{model}_{mode}_{io}.tflite", options))
        (out / "shapes_labels.txt").write_text("\n".join(card["labels"]) + "\n")
    return dict(zip(keys, convert_all(jobs)))


def test_every_mode_converts_and_runs(converted):
    for (model, mode, io), result in converted.items():
        manifest = read_manifest(result.output)
        assert manifest["quantization"]["mode"] == ("int8" if mode == "folder" else mode)
        assert manifest["task"] == ("classify" if "classifier" in model else "detect")
        loaded = open_model(result.output)
        outputs = loaded.run(np.zeros(loaded.inputs[0].shape, np.float32))
        assert np.isfinite(outputs[0]).all(), (model, mode, io)
        if mode == "int8":
            assert loaded.inputs[0].dtype == np.dtype({"float": np.float32, "uint8": np.uint8, "int8": np.int8}[io])


def test_manifest_carries_preprocessing_decoder_evaluation(converted):
    manifest = read_manifest(converted[("detector", "int8", "uint8")].output)
    spec = manifest["inputs"][0]
    assert spec["shape"] == [1, 32, 32, 3] and spec["dtype"] == "uint8" and spec["quantization"]["scale"] > 0
    assert spec["normalization"] == {"mean": 0.0, "std": 255.0} and spec["resize"] == "stretch"
    assert manifest["decoder"]["kind"] == "edgenn_grid" and manifest["decoder"]["grid"] == 4
    assert {"map50_float", "map50_converted", "top1_agreement"} <= set(manifest["evaluation"])
    assert manifest["quantization"]["calibration_samples"] == 32  # 40 read, every 5th held back
    assert len(manifest["provenance"]["source_sha256"]) == 64
    folder = read_manifest(converted[("classifier", "folder", "float")].output)
    assert folder["labels"] == sorted(demo_shapes.LABELS)  # folder names
    assert "accuracy_converted" in folder["evaluation"]


def test_int8_is_small(converted):
    for model in ("classifier", "detector", "demo_classifier", "demo_detector"):
        if (model, "int8", "float") in converted:
            ratio = converted[(model, "int8", "float")].size_bytes / converted[(model, "float32", "float")].size_bytes
            assert ratio <= 0.3, (model, ratio)
    require(("demo_detector", "int8", "float") in converted, "the demo CNNs in edgenn/demo (train_shapes.py)")


def test_demo_cnns_keep_their_quality(converted):
    require(("demo_classifier", "int8", "float") in converted, "the demo CNNs in edgenn/demo (train_shapes.py)")
    classifier = converted[("demo_classifier", "int8", "float")].manifest["evaluation"]
    assert classifier["top1_agreement"] >= 0.98
    assert classifier["accuracy_float"] - classifier["accuracy_converted"] <= 0.01
    detector = converted[("demo_detector", "int8", "float")].manifest["evaluation"]
    assert detector["map50_float"] - detector["map50_converted"] <= 0.02


def test_debug_layers_writes_csv_and_chart(converted):
    paths = converted[("classifier", "int8", "float")].extra_files
    csv_path = next(Path(p) for p in paths if p.endswith(".csv"))
    assert "rmse_over_scale" in csv_path.read_text().splitlines()[0]
    assert next(Path(p) for p in paths if p.endswith(".png")).read_bytes()[:4] == b"\x89PNG"


def test_bundles_run_in_tflite_runtime(converted, tmp_path):
    require(TFLITE_RUNTIME_PYTHON.exists(), "the tflite-runtime venv (make venv-tflite-runtime)")
    script = tmp_path / "run.py"
    script.write_text(
        "import json, sys\nimport numpy as np\nfrom tflite_runtime.interpreter import Interpreter\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        it = Interpreter(model_path=path); it.allocate_tensors(); d = it.get_input_details()[0]\n"
        "        it.set_tensor(d['index'], np.zeros(d['shape'], d['dtype'])); it.invoke()\n"
        "        print(json.dumps([path, True]))\n"
        "    except Exception as exc:\n"
        "        print(json.dumps([path, False]))\n")
    paths = [r.output for r in converted.values()]
    done = subprocess.run([str(TFLITE_RUNTIME_PYTHON), str(script), *paths], capture_output=True, text=True,
                          timeout=300)
    ran = dict(json.loads(line) for line in done.stdout.splitlines())
    for result in converted.values():
        claimed = result.manifest["runtime_support"]["tflite-runtime 2.14"]
        assert ran[result.output] == (claimed == "yes"), (result.output, claimed)
    assert sum(ran.values()) >= len(ran) - 2  # all but dynamic-range FC models (op version too new)


def test_edgetpu_report_maps_every_op_of_the_classifier(tiny, tmp_path):
    model = DEMO / "shapes_classifier.keras"
    model = model if model.exists() else tiny / "classifier.keras"
    done = run_cli(["convert", model, "-o", tmp_path / "tpu.tflite", "--calibration", tiny / "classes.npz",
                    "--target", "edgetpu"])
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    mapped, total = (int(x) for x in header.split(":")[1].split("ops")[0].split(" of "))
    assert mapped == total and "CPU " not in done.stdout
    assert "edgetpu_compiler is not on PATH" in done.stderr
    manifest = read_manifest(tmp_path / "tpu.tflite")
    assert manifest["inputs"][0]["dtype"] == "uint8" and manifest["inputs"][0]["shape"][0] == 1


@pytest.mark.parametrize("case", ["not_a_model", "two_inputs", "no_images", "wrong_shape", "needs_flex", "max_drop"])
def test_bad_input_gives_one_line_and_no_file(tiny, tmp_path, case):
    model = {"not_a_model": "not_a_model.keras", "two_inputs": "two_inputs.keras",
             "needs_flex": "needs_flex"}.get(case, "classifier.keras")
    data = {"no_images": "no_images", "wrong_shape": "wrong_shape.npz", "max_drop": "unlabelled.npz"}.get(
        case, "classes.npz")
    extra = ["--max-drop", "-1"] if case == "max_drop" else []  # without labels the drop is >= 0: never met
    output = tmp_path / "out.tflite"
    if case == "needs_flex":  # no calibration needed to hit the missing builtin
        extra = ["--quantize", "float32"]
    else:
        extra += ["--calibration", tiny / data]
    done = run_cli(["convert", tiny / model, "-o", output, *extra])
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgenn: error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
    expected = {"not_a_model": "not a Keras 3 model", "two_inputs": "has 2 inputs", "no_images": "no images",
                "wrong_shape": "shape [20, 20, 3]", "needs_flex": "MatrixDeterminant", "max_drop": "--max-drop"}
    assert expected[case] in lines[0]


def test_interrupt_leaves_no_file(tiny, tmp_path):
    output = tmp_path / "out.tflite"
    process = subprocess.Popen([str(Path(sys.executable).with_name("edgenn")), "convert", str(tiny / "classifier.keras"),
                                "-o", str(output), "--calibration", str(tiny / "classes.npz"), "--force"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # interrupt once the conversion runs in its child process (a fixed wait raced a 4 s conversion on an idle machine)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    deadline = time.monotonic() + 60
    while process.poll() is None and not children.read_text().split() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0 and "interrupted" in stderr
    assert list(tmp_path.iterdir()) == []


def test_allow_flex_warns(tiny, tmp_path):
    done = run_cli(["convert", tiny / "needs_flex", "-o", tmp_path / "flex.tflite", "--quantize", "float32",
                    "--allow-flex"])
    assert done.returncode == 0, done.stderr
    assert "no device runtime" in done.stderr
    assert read_manifest(tmp_path / "flex.tflite")["runtime_support"]["ai-edge-litert"].startswith("no")


def test_conversion_without_data_still_compares_with_keras(converted):
    evaluation = converted[("classifier_h5", "float16", "float")].manifest["evaluation"]
    assert "generated pictures" in evaluation["source"] and evaluation["top1_agreement"] >= 0.9
