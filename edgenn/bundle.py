"""The bundle: one .tflite file that any TFLite runtime loads, carrying edgenn's manifest inside.

The manifest (`edgenn.json`) and labels (`labels.txt`) travel as a zip appended to the flatbuffer,
the way TFLite Support packs a model's associated files. Runtimes ignore the trailing bytes; the
zip's central directory sits at the end of the file, so `zipfile` finds it with the model in front.
Reading needs only the standard library. Standard TFLite metadata in the flatbuffer
(edgenn.tflite_metadata) points TFLite Support and MediaPipe at the same labels.txt.
"""

import ast
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

from edgenn.errors import EdgennError
from edgenn.manifest import validate
from edgenn.tflite_metadata import original_model, with_metadata

MANIFEST_NAME = "edgenn.json"
LABELS_NAME = "labels.txt"
TFLITE_IDENTIFIER = b"TFL3"


def load_bytes(model):
    """Bytes of a model given as a path or as bytes; a clear error for a missing file."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    path = Path(model)
    if not path.exists():
        raise EdgennError(f"{path}: no such file; check the path or run `edgenn models` for installed names")
    if path.is_dir():
        raise EdgennError(f"{path} is a directory; give the .tflite file inside it")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EdgennError(f"{path}: cannot read ({exc.strerror}); check its permissions") from None


def check_tflite(data, name="model"):
    """Refuse bytes that are not a TFLite flatbuffer before any runtime sees them."""
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise EdgennError(f"{name} is not a TFLite model (no 'TFL3' flatbuffer identifier); "
                          "give a .tflite file, or convert a Keras model with `edgenn convert`")


def associated_files(data):
    """Files packed in the zip appended to the model: {name: bytes}; {} when there is none."""
    if b"PK\x05\x06" not in data[-65557:]:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()
                    if not info.is_dir() and info.file_size < 64 * 1024 * 1024}
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError, RuntimeError):
        return {}


def read_manifest(model, name="model"):
    """The validated manifest dict of a bundle, or None for a model without one.

    A manifest that is present but broken raises EdgennError: a runner must not guess."""
    data = load_bytes(model)
    if not isinstance(model, (bytes, bytearray, memoryview)):
        name = str(model)
    raw = associated_files(data).get(MANIFEST_NAME)
    if raw is None:
        if MANIFEST_NAME.encode() in data[-65557:]:
            raise EdgennError(f"{name}: the archive holding its edgenn.json manifest is damaged; "
                              "re-create the bundle with `edgenn convert` or flash it again")
        return None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgennError(f"{name}: its edgenn.json manifest is not valid JSON ({exc}); "
                          "re-create the bundle with `edgenn convert`") from None
    validate(manifest, name)
    return manifest


def read_labels(model):
    """Labels packed inside the model: edgenn's labels.txt, else a label map that a Coral or TFLite
    Support model carries (*label*.txt), else the class names of an Ultralytics export's metadata.
    None when there are none."""
    files = associated_files(load_bytes(model))
    candidates = [LABELS_NAME] + sorted(n for n in files if n.endswith(".txt") and "label" in n.lower())
    for filename in candidates:
        if filename in files:
            return parse_labels(files[filename].decode("utf-8", errors="replace"))
    for content in files.values():
        names = _ultralytics_names(content)
        if names:
            return names
    return None


def _ultralytics_names(content):
    """Ultralytics writes its metadata as a Python dict literal with a 'names' {id: label} entry."""
    if not content.lstrip().startswith(b"{") or b"names" not in content:
        return None
    try:
        names = ast.literal_eval(content.decode("utf-8")).get("names")
    except (ValueError, SyntaxError, UnicodeDecodeError, AttributeError, MemoryError, RecursionError):
        return None
    if isinstance(names, dict) and names and all(isinstance(k, int) for k in names):
        return [str(names.get(i, i)) for i in range(max(names) + 1)]
    return None


def parse_labels(text):
    """One label per line; also accepts Coral's 'index label' lines ('0 person')."""
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    numbered = [line.split(maxsplit=1) for line in lines if line]
    if numbered and all(len(p) == 2 and p[0].isdigit() for p in numbered):
        table = {int(index): label for index, label in numbered}
        return [table.get(i, "") for i in range(max(table) + 1)]
    return lines


def load_labels_file(path):
    """A sidecar labels file, one label per line."""
    path = Path(path)
    try:
        return parse_labels(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise EdgennError(f"{path}: cannot read labels file ({exc.strerror}); check --labels") from None


def strip_bundle(data):
    """The model as it was before bundling: the bytes before an appended zip's first entry, without
    the standard metadata that make_bundle put in front of the flatbuffer."""
    files_start = _zip_start(data)
    return original_model(data[:files_start] if files_start is not None else data)


def _zip_start(data):
    end = data.rfind(b"PK\x05\x06")
    if end < 0:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            offsets = [info.header_offset for info in archive.infolist()]
            # zipfile reports offsets relative to the archive start: recover it from the end record.
            central_size = int.from_bytes(data[end + 12:end + 16], "little")
            central_offset = int.from_bytes(data[end + 16:end + 20], "little")
            concat = end - central_size - central_offset
            return concat + min(offsets) if offsets else None
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def make_bundle(tflite_bytes, manifest, labels=None):
    """Bundle bytes: the model with standard TFLite metadata built from the manifest, then manifest and
    labels appended as a zip (existing packed files kept)."""
    check_tflite(tflite_bytes)
    validate(manifest, "manifest")
    existing = associated_files(tflite_bytes)
    # Rewrite the archive so our entries replace stale ones instead of duplicating names.
    model = strip_bundle(tflite_bytes) if existing else tflite_bytes
    buffer = io.BytesIO(with_metadata(model, manifest, LABELS_NAME if labels is not None else None))
    buffer.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, content in existing.items():
            if name not in (MANIFEST_NAME, LABELS_NAME):
                archive.writestr(name, content)
        archive.writestr(MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True))
        if labels is not None:
            archive.writestr(LABELS_NAME, "\n".join(labels) + "\n")
    return buffer.getvalue()


def write_atomic(path, data):
    """Write bytes so the file appears only when complete: temp file in the same folder, fsync, rename."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise EdgennError(f"{folder}: output folder does not exist; create it or choose another -o path")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise EdgennError(f"{path}: cannot write ({exc.strerror}); free disk space or choose another path") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_bundle(path, tflite_bytes, manifest, labels=None):
    """Write a bundle atomically; returns its bytes."""
    data = make_bundle(tflite_bytes, manifest, labels)
    write_atomic(path, data)
    return data
