"""Input normalisation read from the Keras model (converters/preprocessing.py), end to end: CNNs that carry
Rescaling or Normalization layers convert to int8 with no normalisation flags and agree with Keras on
pictures fed as the camera runner feeds them; the near-chance guard stops a mismatch.
Models come from tests/preprocessing_models.py, built in a subprocess (no TensorFlow in pytest)."""

import json

import numpy as np
import pytest

from conftest import build_models, run_cli
from edgenn.bundle import read_manifest
from edgenn.converters.pipeline import Options, convert_all
from edgenn.runtime import open_model
from edgenn.vision import VisionTask

MODELS = ("rescale_255", "minus1_to_1", "normalization")


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    return build_models("preprocessing_models.py", tmp_path_factory.mktemp("preprocessing"))


@pytest.fixture(scope="session")
def bundles(made):
    jobs = [(made / f"{name}.keras", made / f"{name}_int8.tflite",
             Options(quantize="int8", calibration=str(made / "calibration.npz"), num_calibration=100))
            for name in MODELS]
    convert_all(jobs)
    return {name: output for name, (_, output, _) in zip(MODELS, jobs)}


@pytest.mark.parametrize("name", MODELS)
def test_cnn_with_its_own_preprocessing_agrees_with_keras(made, bundles, name):
    manifest = read_manifest(bundles[name])
    spec = manifest["inputs"][0]
    assert spec["normalization"] == {"mean": 0.0, "std": 1.0}  # the layers are in the model: it takes pixels
    assert "0-255 pixels" in spec["normalization_source"]
    assert manifest["evaluation"]["accuracy_float"] >= 0.95
    held = np.load(made / "heldout.npz")
    task = VisionTask.create(open_model(bundles[name]), manifest)
    top1 = np.array([task.predict(picture)[0].label_id for picture in held["images"]])
    assert np.mean(top1 == held[f"keras_{name}"]) >= 0.98


def test_keras_applications_preprocessing_is_read(made):
    found = json.loads((made / "applications.json").read_text())
    assert found["MobileNetV2"]["mean"] == [127.5] and found["MobileNetV2"]["std"] == [127.5]
    assert found["MobileNetV2 transfer"] == found["MobileNetV2"]  # the base model nested in the user's
    for name in ("MobileNetV3Small", "EfficientNetB0"):  # include their own Rescaling / Normalization
        assert (found[name]["mean"], found[name]["std"]) == ([0.0], [1.0]), name
    assert found["ResNet50"]["color"] == "bgr"
    assert found["plain CNN"] is None
    assert (found["tutorial"]["mean"], found["tutorial"]["std"]) == ([0.0], [1.0])  # past the augmentation model


def test_near_chance_float_model_stops_the_conversion(made, tmp_path):
    output = tmp_path / "wrong.tflite"
    args = ["convert", made / "rescale_255.keras", "-o", output, "--calibration", made / "calibration.npz",
            "--mean", "0", "--std", "255"]  # divides by 255 twice: the model sees a black picture
    done = run_cli(args)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "chance" in lines[0] and "--mean/--std" in lines[0] and "--force" in lines[0]
    assert not output.exists()
    forced = run_cli(args + ["--force"])
    assert forced.returncode == 0, forced.stderr
    assert read_manifest(output)["inputs"][0]["normalization_source"] == "--mean/--std"
