"""`edgenn demo` end to end: converts both demo models, meets the camera and microphone bars on the
sample input, writes the report and the annotated video."""

import json
import subprocess
import sys

import cv2

from conftest import REPO, run_cli


def test_demo_meets_the_bars(tmp_path):
    calibration = tmp_path / "calibration"
    made = subprocess.run([sys.executable, "-m", "training.make_demo_samples", "--calibration", str(calibration)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "demo"
    result = run_cli(["demo", "--calibration", calibration, "--out", out, "--json"], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["camera"]["map"] >= 0.8
    assert report["microphone"]["recall"] >= 0.7 and report["microphone"]["false_per_minute"] <= 2.5
    assert report["microphone"]["clip_accuracy"] >= 0.9 and report["microphone"]["clips"] >= 500
    assert all(passed for *_, passed in report["verdicts"]) and len(report["verdicts"]) == 4
    page = (out / "report.html").read_text()
    assert "data:image/jpeg;base64," in page and "keyword recall" in page
    video = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == report["camera"]["summary"]["frames"]
    for name in ("shapes_detector_int8.tflite", "speech_commands_int8.tflite"):
        assert run_cli(["inspect", out / name]).returncode == 0


def test_demo_without_calibration_says_how_to_make_it(tmp_path):
    result = run_cli(["demo", "--out", tmp_path / "demo"])
    assert result.returncode == 1
    assert "make_demo_samples --calibration" in result.stderr and "Traceback" not in result.stderr
