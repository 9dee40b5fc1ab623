"""Package boundaries and installation: the device side never needs TensorFlow; `pip install .`
gives a working `edgenn` anywhere."""

import os
import subprocess
import sys

from conftest import REPO

IMPORT_DEVICE_SIDE = """
import importlib, pkgutil, sys
for blocked in ("tensorflow", "tf_keras", "keras"):
    sys.modules[blocked] = None  # any import of them now raises ImportError
import edgenn, edgenn.devices
names = ["edgenn"] + [m.name for m in pkgutil.walk_packages(edgenn.__path__, "edgenn.")
                      if not m.name.startswith("edgenn.converters") and not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
assert not any(k.split(".")[0] in ("tensorflow", "tf_keras") and v is not None for k, v in sys.modules.items())
print(len(names))
"""


def test_device_side_imports_without_tensorflow():
    result = subprocess.run([sys.executable, "-c", IMPORT_DEVICE_SIDE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) >= 10


def test_help_and_version():
    from conftest import run_cli
    from edgenn import __version__
    assert run_cli(["--version"]).stdout.strip().endswith(__version__)
    help_text = run_cli(["--help"]).stdout
    for command in ("convert", "inspect", "bench", "camera", "listen", "flash", "rollback", "models", "service",
                    "doctor", "demo"):
        assert command in help_text
    module = subprocess.run([sys.executable, "-m", "edgenn", "--help"], capture_output=True, text=True)
    assert module.returncode == 0 and "inspect" in module.stdout
    assert run_cli(["inspect"]).returncode == 2


def test_pip_install_into_fresh_venv(tmp_path, fixtures_dir):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin/pip"), "install", "-q", f"{REPO}[device]"], capture_output=True,
                         text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([str(venv / "bin/edgenn"), "inspect", str(fixtures_dir / "models/coral/mobilenet_v2_1.0_224_quant.tflite")],
                            cwd=elsewhere, capture_output=True, text=True, timeout=300,
                            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "litert" in result.stdout and "[1, 224, 224, 3] uint8" in result.stdout
    installed = subprocess.run([str(venv / "bin/python"), "-c",
                                "import edgenn.devices, edgenn.converters, edgenn.cli; print('ok')"],
                               cwd=elsewhere, capture_output=True, text=True)
    assert installed.stdout.strip() == "ok", installed.stderr
