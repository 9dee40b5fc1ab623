"""The one runtime entry point: runtime choice and fallback, quantization, bundles that still load,
the Edge TPU error."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, require
from edgenn import bundle
from edgenn.errors import EdgennError
from edgenn.manifest import new_manifest
from edgenn.runtime import TensorInfo, dequantize, open_model, quantize

TFLITE_RUNTIME_PYTHON = REPO / ".venv-tflite-runtime" / "bin" / "python"
MOBILENET = "models/coral/mobilenet_v1_0.25_128_quant.tflite"

# Runs in a child: optionally makes modules unimportable, opens a model, prints runtime and output.
PROBE = """
import json, sys
for name in sys.argv[2:]:
    sys.modules[name] = None
import numpy as np
from edgenn.errors import EdgennError
from edgenn.runtime import open_model
try:
    model = open_model(sys.argv[1])
except EdgennError as exc:
    print(json.dumps({"error": str(exc)})); sys.exit(0)
image = (np.arange(np.prod(model.inputs[0].shape)) % 251).astype(model.inputs[0].dtype)
print(json.dumps({"runtime": model.runtime, "output": model.run(image, raw=True)[0].reshape(-1).tolist()}))
"""


def probe(python, model, blocked=()):
    result = subprocess.run([str(python), "-c", PROBE, str(model), *blocked], capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_prefers_litert(fixtures_dir):
    assert probe(sys.executable, fixtures_dir / MOBILENET)["runtime"] == "litert"


def test_falls_back_when_litert_is_unimportable(fixtures_dir):
    # tflite_runtime cannot share this venv (numpy 2), so the next in line here is tensorflow.lite.
    result = probe(sys.executable, fixtures_dir / MOBILENET, ["ai_edge_litert", "tflite_runtime"])
    assert result["runtime"] == "tensorflow"
    nothing = probe(sys.executable, fixtures_dir / MOBILENET, ["ai_edge_litert", "tflite_runtime", "tensorflow"])
    assert "no TFLite runtime found" in nothing["error"]


def test_tflite_runtime_is_next_in_line(fixtures_dir):
    require(TFLITE_RUNTIME_PYTHON.exists(), "the tflite-runtime venv (make venv-tflite-runtime)")
    assert probe(TFLITE_RUNTIME_PYTHON, fixtures_dir / MOBILENET, ["ai_edge_litert"])["runtime"] == "tflite_runtime"


def test_forced_runtime_and_environment(fixtures_dir, monkeypatch):
    path = fixtures_dir / MOBILENET
    assert open_model(path, runtime="tensorflow").runtime == "tensorflow"
    monkeypatch.setenv("EDGENN_RUNTIME", "tensorflow")
    assert open_model(path).runtime == "tensorflow"
    monkeypatch.setenv("EDGENN_RUNTIME", "nonsense")
    with pytest.raises(EdgennError, match="unknown runtime 'nonsense'"):
        open_model(path)


def test_bundle_loads_unchanged_with_identical_outputs(fixtures_dir, tmp_path):
    """A manifest inside the file changes nothing for LiteRT or tflite-runtime."""
    original = fixtures_dir / MOBILENET
    manifest = new_manifest("mobilenet", "classify", [{"shape": [1, 128, 128, 3]}], labels=["a", "b"])
    bundled = tmp_path / "mobilenet_bundle.tflite"
    bundle.save_bundle(bundled, original.read_bytes(), manifest, ["a", "b"])
    assert bundle.read_manifest(bundled)["name"] == "mobilenet"
    pythons = [sys.executable]
    require(TFLITE_RUNTIME_PYTHON.exists(), "the tflite-runtime venv (make venv-tflite-runtime)")
    pythons.append(TFLITE_RUNTIME_PYTHON)
    for python in pythons:
        before, after = probe(python, original), probe(python, bundled)
        assert before["output"] == after["output"]


def test_quantize_round_trip():
    tensor = TensorInfo("x", 0, (1, 4), np.dtype(np.int8), 0.5, -3)
    q = quantize(np.array([-1.0, 0.0, 1.26, 500.0]), tensor)
    assert q.tolist() == [-5, -3, -0, 127] or q.tolist() == [-5, -3, -1, 127]
    np.testing.assert_allclose(dequantize(q[:2], tensor), [-1.0, 0.0])


def test_float_inputs_are_quantized_for_the_caller(fixtures_dir):
    model = open_model(fixtures_dir / "models" / "tflite_micro" / "trained_lstm_int8.tflite")
    digit = np.zeros((1, 28, 28), np.float32)
    raw = model.run(digit, raw=True)[0]
    assert raw.dtype == np.int8
    assert model.run(digit)[0].dtype == np.float32


def test_edgetpu_model_without_tpu_is_one_clear_error(fixtures_dir):
    path = fixtures_dir / "models" / "coral" / "edgetpu" / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    with pytest.raises(EdgennError) as error:
        open_model(path)
    message = str(error.value)
    assert "needs an Edge TPU" in message and "libedgetpu" in message and "\n" not in message


def test_not_a_model(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"hello world" * 10)
    with pytest.raises(EdgennError, match="not a TFLite model"):
        open_model(junk)
    with pytest.raises(EdgennError, match="no such file"):
        open_model(tmp_path / "missing.tflite")
