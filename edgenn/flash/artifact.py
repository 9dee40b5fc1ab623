"""What gets flashed: a model's bytes with the name, version and checksum that place it on a device."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from edgenn.bundle import check_tflite, load_bytes, read_manifest
from edgenn.errors import EdgennError

SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class Artifact:
    name: str
    version: str
    data: bytes
    sha256: str
    edgetpu: bool
    source: str

    @property
    def filename(self):
        """The file's name on the device: fixed, so `current/model.tflite` is a stable path,
        with the `_edgetpu` suffix runtimes use to pick the Edge TPU delegate."""
        return "model_edgetpu.tflite" if self.edgetpu else "model.tflite"


def load(model):
    """The artifact for a .tflite path: name and version from its manifest, else the file stem
    and the first 12 hex digits of its sha256."""
    path = Path(model)
    data = load_bytes(path)
    check_tflite(data, str(path))
    manifest = read_manifest(data, str(path)) or {}
    digest = hashlib.sha256(data).hexdigest()
    name = manifest.get("name") or path.stem
    version = manifest.get("version") or digest[:12]
    for what, value in (("name", name), ("version", version)):
        if not SAFE_PART.match(value):
            raise EdgennError(f"{path}: model {what} '{value}' is not a plain file name (letters, digits, "
                              "'._+-'); rename the file or fix the manifest with `edgenn convert`")
    edgetpu = path.name.endswith("_edgetpu.tflite") or manifest.get("target") == "edgetpu"
    return Artifact(name, version, data, digest, edgetpu, str(path))
