"""`edgenn demo`: the shipped bundles still match the committed Keras models and samples; with --convert
(TensorFlow) it rebuilds both bundles and meets the camera and microphone bars on the sample input,
writing the report and the annotated video; a bad --out is one line. (tests/test_device_demo.py runs the
shipped bundles on a device install without TensorFlow.)"""

import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, run_cli
from edgenn.bundle import read_manifest
from edgenn.demo_run import DEMO, DETECTOR_BUNDLE, PHRASE_BUNDLE, PHRASE_WER_BAR, SPEECH_ACCURACY_BAR, SPEECH_BUNDLE
from edgenn.wav import read_wav


@pytest.mark.parametrize("bundle, keras", [(DETECTOR_BUNDLE, "shapes_detector.keras"),
                                           (SPEECH_BUNDLE, "speech_commands.keras"),
                                           (PHRASE_BUNDLE, "speech_phrases.keras")])
def test_shipped_bundle_is_made_from_the_committed_keras_model(bundle, keras):
    provenance = read_manifest(DEMO / bundle)["provenance"]
    assert provenance["source"] == keras
    assert provenance["source_sha256"] == hashlib.sha256((DEMO / keras).read_bytes()).hexdigest(), \
        f"edgenn/demo/{keras} changed since edgenn/demo/{bundle} was made: run `make demo-bundles` and commit"


def test_shipped_speech_clips_are_labelled_test_speakers():
    from training import real_speech
    from training.speech_data import LABELS

    meta = json.loads((DEMO / "speech_clips.json").read_text())
    clips = meta["clips"]
    samples, rate = read_wav(DEMO / "speech_clips.wav")
    assert rate == 16000 and len(samples) == sum(c["samples"] for c in clips)
    assert sorted(c["label"] for c in clips) == sorted(LABELS * meta["per_label"])
    assert {real_speech.split_of(c["speaker"]) for c in clips} == {"test"}
    assert "CC BY 4.0" in meta["credit"]


def test_shipped_sample_phrases_are_validation_speakers():
    from training import phrase_data

    meta = json.loads((DEMO / "sample_phrases.json").read_text())
    samples, rate = read_wav(DEMO / "sample_phrases.wav")
    again, _, truth = phrase_data.make_phrase_stream("dev", len(meta["phrases"]), pause=(1.0, 1.6), seed=meta["seed"])
    assert rate == 16000 and truth == meta["phrases"] and np.max(np.abs(again - samples)) < 1e-4
    assert all(1 <= len(p["words"]) <= 3 for p in truth) and "CC BY 4.0" in meta["credit"]


def test_demo_converts_and_meets_the_bars(tmp_path):
    calibration = tmp_path / "calibration"
    made = subprocess.run([sys.executable, "-m", "training.make_demo_samples", "--calibration", str(calibration)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "demo"
    result = run_cli(["demo", "--calibration", calibration, "--out", out, "--json"], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["bundles"] == [str(out / DETECTOR_BUNDLE), str(out / SPEECH_BUNDLE), str(out / PHRASE_BUNDLE)]
    assert report["camera"]["map"] >= 0.8
    microphone = report["microphone"]
    assert microphone["recall"] >= 0.7 and microphone["false_per_minute"] <= 2.5
    assert microphone["clip_accuracy"] >= SPEECH_ACCURACY_BAR and microphone["clips"] == 120
    # the test split as the converter measured it (the shipped clips are 120 of its 557)
    assert microphone["conversion_accuracy"] >= 0.9 and microphone["conversion_clips"] >= 500
    phrases = report["phrases"]
    assert phrases["word_error_rate"] <= PHRASE_WER_BAR and phrases["phrases"] == 20
    assert all(passed for *_, passed in report["verdicts"]) and len(report["verdicts"]) == 5
    page = (out / "report.html").read_text()
    assert "data:image/jpeg;base64," in page and "keyword recall" in page and "phrase word error rate" in page
    video = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == report["camera"]["summary"]["frames"]
    for name in (DETECTOR_BUNDLE, SPEECH_BUNDLE, PHRASE_BUNDLE):
        assert run_cli(["inspect", out / name]).returncode == 0


def test_convert_without_calibration_says_how_to_make_it(tmp_path):
    result = run_cli(["demo", "--convert", "--out", tmp_path / "demo"])
    assert result.returncode == 1
    assert "make_demo_samples --calibration" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "demo").exists()


def unwritable_outs(tmp_path):
    (tmp_path / "a_file").write_text("")
    yield tmp_path / "a_file" / "demo"  # under a file: no one can create it
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "read_only").mkdir(mode=0o555)
        yield tmp_path / "read_only" / "demo"
        yield tmp_path / "read_only"


def test_demo_out_where_it_cannot_write_is_one_line(tmp_path):
    for out in unwritable_outs(tmp_path):
        before = sorted(tmp_path.rglob("*"))
        result = run_cli(["demo", "--out", out])
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"edgenn: error: --out {out}: "), result.stderr
        assert "give --out a folder you can write to" in result.stderr and "Traceback" not in result.stderr
        assert sorted(tmp_path.rglob("*")) == before
