"""Checks of this machine for running edgenn, each with the fix for what is missing."""

import ctypes.util
import glob
import importlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass

from edgenn.errors import EdgennError
from edgenn.flash import profiles
from edgenn.runtime import RUNTIMES, _DISTRIBUTIONS, _MODULES

MODELS_DIR = os.path.expanduser("~/.local/share/edgenn/models")
MIN_FREE_MB = 200


@dataclass
class Check:
    area: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False  # a failed required check means edgenn cannot run models here

    def as_dict(self):
        return {"area": self.area, "ok": self.ok, "detail": self.detail, "fix": self.fix, "required": self.required}


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_board():
    try:
        board = profiles.detect()
    except EdgennError as exc:
        return Check("board", False, str(exc))  # the message names the fix
    if board is None:
        return Check("board", True, "not a known edge board (runners use their PC defaults); "
                     "set EDGENN_PROFILE to one of " + ", ".join(profiles.PROFILES) + " to override")
    return Check("board", True, f"{board.description}: profile {board.name}, which sets the runners' camera, "
                 "threads and runtime (EDGENN_PROFILE overrides)")


def check_python():
    version = sys.version.split()[0]
    ok = sys.version_info >= (3, 9)
    return Check("python", ok, f"Python {version} at {sys.executable}", "" if ok else "install Python 3.9 or newer",
                 required=True)


def check_architecture():
    """32-bit Pi OS cannot run edgenn: the wheels it needs are built for 64-bit ARM (aarch64) only."""
    machine = platform.machine()
    if machine in ("armv7l", "armv6l"):
        return Check("architecture", False, f"32-bit ARM ({machine}): ai-edge-litert has no 32-bit ARM build, and "
                     "PyPI has no numpy or OpenCV wheels for it", "install Raspberry Pi OS (64-bit) "
                     "(a Pi 3, 4, 5 or Zero 2 W runs it); `uname -m` must say aarch64", required=True)
    return Check("architecture", True, machine or "unknown")


def import_error(module):
    """Why MODULE fails to import, or None when it imports. Tried in a child: TensorFlow's import logs
    to stderr and a runtime built against another numpy prints pages there, which stay in the child."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}"


def check_runtimes():
    checks, usable = [], 0
    numpy_version = _version("numpy") or "missing"
    for name in RUNTIMES:
        installed = _version(_DISTRIBUTIONS[name])
        if not installed:
            continue
        error = import_error(_MODULES[name])
        if error is None:
            usable += 1
            checks.append(Check(f"runtime {name}", True, f"{_DISTRIBUTIONS[name]} {installed} imports"))
            continue
        fix = (f"tflite-runtime needs numpy < 2 (numpy {numpy_version} here): pip install 'numpy<2', "
               "or use ai-edge-litert instead" if name == "tflite_runtime" else
               f"reinstall it: pip install --force-reinstall {_DISTRIBUTIONS[name]}")
        checks.append(Check(f"runtime {name}", False, f"{_DISTRIBUTIONS[name]} {installed} fails to import: "
                            f"{error[:120]}", fix))
    if not usable:
        checks.append(Check("runtime", False, "no TFLite runtime installed", "pip install ai-edge-litert",
                            required=True))
    checks.append(Check("numpy", True, f"numpy {numpy_version}"))
    return checks


def check_opencv():
    try:
        import cv2
    except ImportError:
        return Check("opencv", False, "OpenCV is not installed (needed by edgenn camera)",
                     "pip install opencv-python-headless (or edgenn[device])")
    gui = "without a GUI (headless build: no --display)" if "GUI:" in cv2.getBuildInformation() and \
        "NONE" in cv2.getBuildInformation().split("GUI:")[1].splitlines()[0] else "with a GUI"
    return Check("opencv", True, f"OpenCV {cv2.__version__} {gui}")


def check_cameras():
    checks = []
    devices = sorted(glob.glob("/dev/video*"))
    checks.append(Check("camera v4l2", bool(devices), ", ".join(devices) if devices else "no /dev/video* device",
                        "" if devices else "plug in a USB camera (check `dmesg` after plugging) or enable the "
                        "CSI camera; for a video file use --source FILE"))
    try:
        importlib.import_module("picamera2")
        checks.append(Check("camera picamera2", True, "picamera2 imports (CSI camera via libcamera)"))
    except Exception:
        checks.append(Check("camera picamera2", False, "picamera2 is not importable (only for the CSI camera)",
                            "on Raspberry Pi OS: sudo apt install python3-picamera2 and create the venv with "
                            "--system-site-packages"))
    return checks


def check_audio():
    try:
        import sounddevice
    except ImportError:
        return Check("audio", False, "sounddevice is not installed (needed by edgenn listen)",
                     "pip install sounddevice (or edgenn[device])")
    except OSError:
        return Check("audio", False, "PortAudio library not found (sounddevice needs it)",
                     "sudo apt install libportaudio2")
    try:
        inputs = [d["name"] for d in sounddevice.query_devices() if d["max_input_channels"] > 0]
    except Exception as exc:
        return Check("audio", False, f"PortAudio cannot list devices: {exc}", "check `arecord -l` and your ALSA setup")
    return Check("audio", bool(inputs), f"input devices: {', '.join(inputs)}" if inputs else "no audio input device",
                 "" if inputs else "plug in a USB microphone (check `arecord -l`); for a file use --source FILE.wav")


def check_edgetpu():
    usb = bool(profiles.usb_ids() & profiles.CORAL_USB_IDS)
    pcie = bool(glob.glob("/dev/apex_*"))
    library = ctypes.util.find_library("edgetpu")
    device = "USB accelerator" if usb else "PCIe/M.2 (/dev/apex_*)" if pcie else None
    checks = [Check("edge tpu device", bool(device), f"Coral {device} found" if device else "no Coral Edge TPU found",
                    "" if device else "only needed for *_edgetpu.tflite models: plug in the Coral USB Accelerator "
                    "(use a USB 3 port) or install the PCIe driver (gasket-dkms)")]
    checks.append(Check("edge tpu runtime", bool(library), f"libedgetpu: {library}" if library else "libedgetpu not installed",
                        "" if library else "add Coral's apt repository and sudo apt install libedgetpu1-std"))
    return checks


def check_disk():
    folder = MODELS_DIR
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    free_mb = shutil.disk_usage(folder).free / 1e6
    ok = free_mb >= MIN_FREE_MB
    return Check("disk", ok, f"{free_mb:,.0f} MB free for models in {MODELS_DIR}",
                 "" if ok else "free some space (models and recordings need room): sudo apt clean, remove old "
                 "recordings, or prune old model versions with `edgenn flash --keep`")


def run_checks():
    checks = [check_board(), check_architecture(), check_python(), *check_runtimes(), check_opencv(),
              *check_cameras(), check_audio(), *check_edgetpu(), check_disk()]
    return checks
