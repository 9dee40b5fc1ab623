"""Device profiles: what each board offers, so runners pick sensible defaults and flash can warn
when a bundle does not fit the device."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgenn.errors import EdgennError


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    threads: int            # the board's big cores
    runtime: str            # preferred TFLite runtime on the device (a name in edgenn.runtime.RUNTIMES)
    delegate: str | None    # delegate library a runner loads for `_edgetpu` models
    camera: str             # default camera backend: picamera2 (CSI) or v4l2 (USB / Coral camera)
    has_tpu: bool
    memory_mb: int


PROFILES = {
    p.name: p for p in (
        Profile("rpi4", "Raspberry Pi 4 (Cortex-A72, 4 cores)", 4, "litert", None,
                "picamera2", False, 2048),
        Profile("rpi5", "Raspberry Pi 5 (Cortex-A76, 4 cores)", 4, "litert", None,
                "picamera2", False, 4096),
        Profile("rpi-zero2w", "Raspberry Pi Zero 2 W (Cortex-A53, 4 cores, 512 MB)", 3,
                "litert", None, "picamera2", False, 512),
        Profile("rpi-coral-usb", "Raspberry Pi 4/5 with a Coral USB Accelerator", 4,
                "litert", "libedgetpu.so.1", "picamera2", True, 2048),
        Profile("coral-devboard", "Coral Dev Board (i.MX 8M + Edge TPU, Mendel Linux)", 4,
                "tflite_runtime", "libedgetpu.so.1", "v4l2", True, 1024),
    )
}

ALIASES = {
    "pi4": "rpi4", "raspberry-pi-4": "rpi4",
    "pi5": "rpi5", "raspberry-pi-5": "rpi5",
    "zero2w": "rpi-zero2w", "pi-zero-2w": "rpi-zero2w",
    "coral-usb": "rpi-coral-usb", "pi-coral-usb": "rpi-coral-usb",
    "devboard": "coral-devboard", "coral-dev-board": "coral-devboard",
}


def get(name):
    """The profile called NAME (or one of its aliases); EdgennError naming the known ones."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in PROFILES:
        raise EdgennError(f"unknown device profile '{name}'; use one of: {', '.join(PROFILES)}")
    return PROFILES[key]


# USB ids of the Coral USB Accelerator: before its firmware loads, and after.
CORAL_USB_IDS = {("1a6e", "089a"), ("18d1", "9302")}


def usb_ids(root="/"):
    """(vendor, product) id pairs of the USB devices plugged in."""
    found = set()
    for device in (Path(root) / "sys/bus/usb/devices").glob("*"):
        try:
            found.add(((device / "idVendor").read_text().strip(), (device / "idProduct").read_text().strip()))
        except OSError:
            continue
    return found


def detect(root="/"):
    """The profile of the machine this runs on ($EDGENN_PROFILE, else the device tree's model name
    and a Coral USB Accelerator on the USB bus), or None on an unknown machine such as a PC."""
    name = os.environ.get("EDGENN_PROFILE")
    if name:
        try:
            return get(name)
        except EdgennError:
            raise EdgennError(f"EDGENN_PROFILE={name!r} names no device profile; set it to one of "
                              f"{', '.join(PROFILES)}, or unset it to detect the board") from None
    try:
        model = (Path(root) / "proc/device-tree/model").read_bytes().decode(errors="replace").strip("\0 \n")
    except OSError:
        return None
    if "Phanbell" in model or "i.MX8MQ" in model:
        return PROFILES["coral-devboard"]
    if usb_ids(root) & CORAL_USB_IDS and "Raspberry Pi" in model:
        return PROFILES["rpi-coral-usb"]
    for prefix, name in (("Raspberry Pi Zero 2", "rpi-zero2w"), ("Raspberry Pi 5", "rpi5"), ("Raspberry Pi 4", "rpi4")):
        if model.startswith(prefix):
            return PROFILES[name]
    return None


def fit_warnings(profile, edgetpu, size_bytes):
    """Reasons a model may not run well on a device with this profile (empty when it fits)."""
    warnings = []
    if edgetpu and not profile.has_tpu:
        warnings.append(f"an Edge TPU model on {profile.name}, which has no Edge TPU: it will not run "
                        "there; flash the CPU model instead")
    if not edgetpu and profile.has_tpu:
        warnings.append(f"a CPU model on {profile.name}: it runs, but the Edge TPU stays idle; "
                        "convert with --target edgetpu to use it")
    if size_bytes > profile.memory_mb * 1024 * 1024 // 8:
        warnings.append(f"a {size_bytes / 1e6:.0f} MB model on {profile.name} with {profile.memory_mb} MB "
                        "of memory: expect swapping; use a smaller or quantized model")
    return warnings
