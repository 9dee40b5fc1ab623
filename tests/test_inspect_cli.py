"""`edgenn inspect` on published, Edge TPU, bundled, corrupt and mutated models."""

import io
import json
import zipfile

import numpy as np
import pytest

from conftest import run_cli
from edgenn import bundle
from edgenn.manifest import new_manifest

EDGETPU = ["mobilenet_v1_0.25_128_quant_edgetpu.tflite", "keras_lstm_mnist_ptq_edgetpu.tflite",
           "voice_commands_v0.8_edgetpu.tflite"]


def test_published_model_report(fixtures_dir):
    path = fixtures_dir / "models/coral/mobilenet_v1_0.25_128_quant.tflite"
    result = run_cli(["inspect", path, "--json"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["runtime"] == {"loaded": True, "name": "litert", "version": report["runtime"]["version"]}
    assert report["inputs"][0]["shape"] == [1, 128, 128, 3] and report["inputs"][0]["dtype"] == "uint8"
    assert report["inputs"][0]["quantization"] == {"scale": 0.0078125, "zero_point": 128}
    assert {op["name"]: op["count"] for op in report["ops"]}["DEPTHWISE_CONV_2D"] == 13
    assert report["labels"]["count"] == 1001 and len(report["sha256"]) == 64
    text = run_cli(["inspect", path])
    assert text.returncode == 0 and "CONV_2D v1 ×15" in text.stdout and "litert" in text.stdout


@pytest.mark.parametrize("name", EDGETPU)
def test_edgetpu_models_are_listed_and_flagged(fixtures_dir, name):
    result = run_cli(["inspect", fixtures_dir / "models/coral/edgetpu" / name, "--json"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["needs_edgetpu"] and not report["runtime"]["loaded"]
    assert report["inputs"][0]["dtype"] == "uint8" and report["outputs"]
    text = run_cli(["inspect", fixtures_dir / "models/coral/edgetpu" / name]).stdout
    assert "needs an Edge TPU" in text


def test_bundle_manifest_is_shown(fixtures_dir, tmp_path):
    path = tmp_path / "digits.tflite"
    model = (fixtures_dir / "models/coral/keras_lstm_mnist_ptq.tflite").read_bytes()
    bundle.save_bundle(path, model, new_manifest("digits", "classify", [{"shape": [1, 28, 28]}],
                                                 quantization={"mode": "int8"}), [str(i) for i in range(10)])
    result = run_cli(["inspect", path])
    assert result.returncode == 0, result.stderr
    assert "digits 1: task classify, quantization int8" in result.stdout


def assert_clean_failure(result, count=1):
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgenn: error:")]
    assert len(errors) == count, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def with_manifest_text(model, text):
    """A model with an arbitrary edgenn.json packed the way bundles pack it."""
    buffer = io.BytesIO(model)
    buffer.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("edgenn.json", text)
    return buffer.getvalue()


def test_corrupt_manifest_and_model_exit_1(fixtures_dir, tmp_path):
    model = (fixtures_dir / "models/coral/keras_lstm_mnist_ptq.tflite").read_bytes()
    good = bundle.make_bundle(model, new_manifest("digits", "classify", [{"shape": [1, 28, 28]}]))
    base = {"format_version": 1, "name": "digits", "version": "1", "task": "classify", "inputs": []}
    cases = {
        "bad_json.tflite": (with_manifest_text(model, "{'task': classify"), "not valid JSON"),
        "future.tflite": (with_manifest_text(model, json.dumps({**base, "format_version": 7})), "newer than this"),
        "no_task.tflite": (with_manifest_text(model, json.dumps({**base, "task": None} | {})), "should be str"),
        "damaged_zip.tflite": (good.replace(b'"task": "classify"', b'"task": "classifx"'), "damaged"),
        "truncated.tflite": (model[: len(model) // 3], "damaged TFLite flatbuffer"),
        "not_a_model.tflite": (b"<html>404 not found</html>", "not a TFLite model"),
        "empty.tflite": (b"", "not a TFLite model"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        result = run_cli(["inspect", tmp_path / name])
        assert_clean_failure(result)
        assert name in result.stderr and message in result.stderr, result.stderr


def mutate(data, rng):
    kind = rng.integers(3)
    data = bytearray(data)
    if kind == 0:
        return bytes(data[: rng.integers(8, len(data))])
    if kind == 1:
        for position in rng.integers(8, len(data), size=rng.integers(1, 40)):
            data[position] ^= 1 << int(rng.integers(8))
        return bytes(data)
    return bytes(data) + rng.bytes(int(rng.integers(1, 4096)))


def test_mutated_models_never_crash_the_cli(fixtures_dir, tmp_path):
    """≥ 200 seeded mutations: the CLI always ends by itself, with a report or one error line each."""
    rng = np.random.default_rng(2026)
    sources = [(fixtures_dir / "models" / name).read_bytes() for name in
               ("coral/keras_lstm_mnist_ptq.tflite", "coral/mobilenet_v1_0.25_128_quant.tflite")]
    paths = []
    for i in range(210):
        path = tmp_path / f"mutant_{i:03d}.tflite"
        path.write_bytes(mutate(sources[i % 2], rng))
        paths.append(path)
    for start in range(0, len(paths), 35):
        batch = paths[start:start + 35]
        result = run_cli(["inspect", "--json", *batch], timeout=600)
        assert result.returncode in (0, 1), f"CLI died with {result.returncode}: {result.stderr[-500:]}"
        assert "Traceback" not in result.stderr + result.stdout
        reports = [line for line in result.stdout.splitlines() if line.startswith("{")]
        errors = [line for line in result.stderr.splitlines() if line.startswith("edgenn: error:")]
        assert len(reports) + len(errors) == len(batch), result.stderr[-2000:]
