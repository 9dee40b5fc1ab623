"""RNNs over any time series, not only audio: Keras 3 GRU/LSTM models on [N, 49, 40] sensor-like sequences
calibrated from .npz / a folder of .npy, converted to int8 window and streaming bundles (task classify).
Models come from tests/sequence_models.py (a subprocess: no TensorFlow in pytest)."""


import numpy as np
import pytest

from conftest import build_models, run_cli
from edgenn.bundle import read_manifest
from edgenn.converters.pipeline import Options, convert_all
from edgenn.modelfile import read_contents
from edgenn.runtime import open_model
from edgenn.streaming import run_steps

CASES = {  # name: (model, options)
    "gru_window": ("gru", {"calibration": "calibration.npz", "eval": "heldout.npz"}),
    "gru_streaming_io_int8": ("gru", {"calibration": "calibration.npz", "eval": "heldout_npy", "streaming": True,
                                      "io": "int8"}),
    "lstm_window": ("lstm", {"calibration": "calibration.npz", "eval": "heldout.npz"}),
    "lstm_streaming": ("lstm", {"calibration": "calibration.npz", "streaming": True}),
    "gru_float_no_data": ("gru", {"quantize": "float32"}),
}


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    return build_models("sequence_models.py", tmp_path_factory.mktemp("sequences"))


@pytest.fixture(scope="session")
def bundles(made):
    jobs = []
    for name, (model, options) in CASES.items():
        options = {"quantize": "int8", **options}
        for key in ("calibration", "eval"):
            if key in options:
                options[key] = str(made / options[key])
        jobs.append((made / f"{model}.keras", made / f"{name}.tflite", Options(**options)))
    convert_all(jobs)
    return {name: made / f"{name}.tflite" for name in CASES}


@pytest.mark.parametrize("name", ["gru_window", "gru_streaming_io_int8", "lstm_window", "lstm_streaming"])
def test_int8_sequence_bundles_agree_with_keras(made, bundles, name):
    manifest = read_manifest(bundles[name])
    assert manifest["task"] == "classify" and "audio_frontend" not in manifest
    assert manifest["labels"] == ["ramp", "sine", "pulses"]  # from the .npz's label_names
    contents = read_contents(bundles[name].read_bytes())
    assert "WHILE" not in contents.op_names and not contents.flex_ops
    held = np.load(made / "heldout.npz")
    model = open_model(bundles[name])
    spec = manifest.get("streaming")
    top1 = [int(np.argmax(run_steps(model, x, spec) if spec else model.run(x[None])[0])) for x in held["x"]]
    assert np.mean(np.array(top1) == held[f"keras_{CASES[name][0]}"]) >= 0.98


def test_standard_metadata_names_the_labels_and_no_picture(bundles):
    from edgenn.tflite_metadata import read_metadata

    metadata = read_metadata(bundles["gru_window"].read_bytes())
    assert [f["name"] for o in metadata["outputs"] for f in o["files"]] == ["labels.txt"]
    assert all(not i.get("color_space") for i in metadata["inputs"])  # a sequence, not a picture


def test_io_int8_makes_every_tensor_int8(bundles):
    model = open_model(bundles["gru_streaming_io_int8"])
    assert len(model.inputs) == 3  # the frame and the two GRU states
    assert {str(t.dtype) for t in model.inputs + model.outputs} == {"int8"}


def test_every_conversion_reports_float_vs_converted(bundles):
    evaluation = read_manifest(bundles["gru_float_no_data"])["evaluation"]
    assert "generated inputs" in evaluation["source"] and evaluation["top1_agreement"] >= 0.98
    assert read_manifest(bundles["gru_streaming_io_int8"])["evaluation"]["samples"] == 60  # the .npy folder


@pytest.mark.parametrize("case", ["no_x", "wrong_shape"])
def test_bad_arrays_give_one_line_and_no_file(made, tmp_path, case):
    data = tmp_path / "data.npz"
    np.savez(data, **({"samples": np.zeros((4, 49, 40))} if case == "no_x" else {"x": np.zeros((4, 20, 40))}))
    output = tmp_path / "out.tflite"
    done = run_cli(["convert", made / "gru.keras", "-o", output, "--calibration", data])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert {"no_x": "no 'x' array", "wrong_shape": "[20, 40]"}[case] in lines[0]
    assert not output.exists()


@pytest.mark.parametrize("model,extra", [("gru", ["--streaming"]), ("lstm", [])])
def test_edgetpu_target_gives_static_shapes_that_map(made, tmp_path, model, extra):
    done = run_cli(["convert", made / f"{model}.keras", "-o", tmp_path / "tpu.tflite", "--calibration",
                    made / "calibration.npz", "--target", "edgetpu", *extra])
    assert done.returncode == 0, done.stderr
    mapped, total = (int(x) for x in done.stdout.splitlines()[0].split(":")[1].split("ops")[0].split(" of "))
    assert "dynamic" not in done.stdout and mapped == total, done.stdout[:2000]
    model_file = open_model(tmp_path / "tpu.tflite")
    assert all(-1 not in t.shape for t in model_file.inputs + model_file.outputs)
