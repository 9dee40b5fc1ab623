"""`edgenn demo` on a Pi's install: edgenn[device] in a venv of its own (make venv-device), no TensorFlow,
run from a folder outside the checkout, on the bundles, sample WAV and clips the package ships."""

import json
import os
import subprocess

import pytest

from conftest import REPO, venv_python


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory):
    """The device venv's bin folder, with edgenn reinstalled from this checkout (its deps as make installed them)."""
    python = venv_python(".venv-device", "venv-device")
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(REPO)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return python.parent


def run_elsewhere(bin_folder, folder, *args, timeout=900):
    """A command of the device venv in FOLDER, with neither the checkout nor the fixtures in sight."""
    folder.mkdir(exist_ok=True)
    return subprocess.run([str(bin_folder / args[0]), *map(str, args[1:])], cwd=folder, capture_output=True, text=True,
                          timeout=timeout, env={"PATH": os.environ["PATH"], "HOME": str(folder)})


def test_device_install_has_no_tensorflow(device_venv, tmp_path):
    result = run_elsewhere(device_venv, tmp_path, "python", "-c", "import tensorflow")
    assert result.returncode != 0 and "No module named 'tensorflow'" in result.stderr


def test_demo_passes_its_checks_without_tensorflow(device_venv, tmp_path):
    result = run_elsewhere(device_venv, tmp_path / "elsewhere", "edgenn", "demo", "--out", "demo", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert [passed for *_, passed in report["verdicts"]] == [True] * 5, report["verdicts"]
    assert report["camera"]["map"] >= 0.8 and report["microphone"]["clips"] == 120
    assert all("/site-packages/edgenn/demo/" in bundle for bundle in report["bundles"])
    out = tmp_path / "elsewhere" / "demo"
    assert "keyword recall" in (out / "report.html").read_text() and report["phrases"]["phrases"] == 20
    assert (out / "annotated.mp4").stat().st_size > 0


def test_convert_without_tensorflow_is_one_line(device_venv, tmp_path):
    result = run_elsewhere(device_venv, tmp_path, "edgenn", "demo", "--convert", "--out", "demo")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("edgenn: error: --convert") and "without --convert" in result.stderr
    assert not (tmp_path / "demo").exists()
