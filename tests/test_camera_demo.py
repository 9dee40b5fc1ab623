"""The demo detector, converted to a full-int8 bundle, through the camera runner on a generated demo
video: mAP@0.5 against the generator's ground truth."""

import json
import os
from pathlib import Path

import pytest

from conftest import REPO, require, run_cli
from edgenn import demo_shapes
from edgenn.devices.camera import run_camera
from edgenn.metrics import mean_average_precision

DETECTOR = Path(os.environ.get("EDGENN_DEMO_DETECTOR", REPO / "edgenn" / "demo" / "shapes_detector.keras"))


@pytest.fixture(scope="session")
def demo_detector_bundle(tmp_path_factory):
    require(DETECTOR.exists(), f"the demo detector {DETECTOR} (training/train_shapes.py)")
    require((REPO / "edgenn" / "cli" / "convert.py").exists(), "the `edgenn convert` command")
    root = tmp_path_factory.mktemp("demo_detector")
    calibration = root / "calibration"
    demo_shapes.write_video_frames(calibration, seconds=8, fps=8, seed=101)
    labels = root / "labels.txt"
    labels.write_text("\n".join(demo_shapes.LABELS) + "\n")
    bundle = root / "shapes_detector_int8.tflite"
    result = run_cli(["convert", DETECTOR, "-o", bundle, "--task", "detect", "--quantize", "int8",
                      "--calibration", calibration, "--labels", labels], timeout=600)
    assert result.returncode == 0, result.stderr
    return bundle


def test_demo_detector_map_on_generated_video(demo_detector_bundle, tmp_path):
    video = demo_shapes.write_demo_video(tmp_path / "demo.mp4", seconds=10, fps=15, seed=7)
    truth = json.loads(Path(video).with_suffix(".json").read_text())
    predictions = {}
    summary = run_camera(demo_detector_bundle, str(video), decoder="edgenn_grid", threshold=0.1,
                         on_result=lambda frame, results: predictions.__setitem__(frame.index, results))
    frames = truth["frames"]
    assert summary["frames"] == len(frames) and summary["dropped"] == 0
    found = [[(d.label_id, d.score, d.box) for d in predictions[f["frame"]]] for f in frames]
    expected = [[(o["class"], o["box"]) for o in f["objects"]] for f in frames]
    score, per_class = mean_average_precision(found, expected, iou=0.5, per_class=True)
    print(f"demo detector int8 mAP@0.5 on {len(frames)} frames: {score:.3f} {per_class}")
    assert score >= 0.8, per_class
