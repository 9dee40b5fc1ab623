"""Helpers shared by the flash tests: small bundles, and checks of a device's models folder."""

import hashlib
import json
import os
import random
from pathlib import Path

from edgenn.bundle import make_bundle
from edgenn.manifest import new_manifest


def make_model(folder, version, size=50_000, name="shapes", seed=0):
    """A bundle: TFLite-looking bytes with a manifest naming NAME and VERSION."""
    data = b"\x18\x00\x00\x00TFL3" + random.Random(f"{seed}{version}").randbytes(size)
    path = Path(folder) / f"{name}-{version}.tflite"
    path.write_bytes(make_bundle(data, new_manifest(name, "classify", [{"shape": [1, 8, 8, 3]}], version=version)))
    return path


def current(folder, name="shapes"):
    return os.readlink(folder / name / "current")


def assert_complete(folder, name="shapes"):
    """`current` names a version whose file matches the sha256 its install.json records."""
    version = folder / name / current(folder, name)
    info = json.loads((version / "install.json").read_text())
    assert hashlib.sha256((version / info["file"]).read_bytes()).hexdigest() == info["sha256"]
    return info
