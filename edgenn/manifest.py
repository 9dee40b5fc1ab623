"""The manifest schema: what a runner needs to use a bundle and what an auditor needs to trust it.

Validation is hand-written over plain dicts so a device needs nothing beyond the standard library.
"""

from edgenn.errors import EdgennError

FORMAT_VERSION = 1
TASKS = ("classify", "detect", "keywords", "audio_classify", "phrases")
DECODERS = ("topk", "ssd_postprocess", "yolov8", "edgenn_grid", "keywords", "phrases")
QUANTIZATIONS = ("float32", "dynamic", "float16", "int8", "int16x8")
TARGETS = ("cpu", "edgetpu")

# field -> (required, type or tuple of types)
FIELDS = {
    "format_version": (True, int),
    "name": (True, str),
    "version": (True, str),
    "task": (True, str),
    "labels": (False, list),
    "inputs": (True, list),
    "decoder": (False, dict),
    "audio_frontend": (False, dict),
    "streaming": (False, dict),
    "quantization": (False, dict),
    "evaluation": (False, dict),
    "target": (False, str),
    "provenance": (False, dict),
    "runtime_support": (False, dict),
}


def validate(manifest, name="manifest"):
    """Raise EdgennError with one line for the first problem found."""
    def fail(problem):
        raise EdgennError(f"{name}: invalid edgenn manifest: {problem}; re-create the bundle with `edgenn convert`")

    if not isinstance(manifest, dict):
        fail("not a JSON object")
    version = manifest.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise EdgennError(f"{name}: manifest format version {version} is newer than this edgenn understands "
                          f"({FORMAT_VERSION}); upgrade edgenn (pip install -U edgenn)")
    for field, (required, kind) in FIELDS.items():
        if field not in manifest:
            if required:
                fail(f"missing field '{field}'")
            continue
        if not isinstance(manifest[field], kind) or isinstance(manifest[field], bool):
            fail(f"field '{field}' should be {kind.__name__}")
    if manifest["format_version"] < 1:
        fail(f"unknown format version {manifest['format_version']}")
    if manifest["task"] not in TASKS:
        fail(f"unknown task '{manifest['task']}' (known: {', '.join(TASKS)})")
    if not manifest["name"] or "/" in manifest["name"] or manifest["name"].startswith("."):
        fail("field 'name' must be a plain name (no '/', not starting with '.')")
    decoder = manifest.get("decoder", {}).get("kind")
    if decoder is not None and decoder not in DECODERS:
        fail(f"unknown decoder '{decoder}' (known: {', '.join(DECODERS)})")
    mode = manifest.get("quantization", {}).get("mode")
    if mode is not None and mode not in QUANTIZATIONS:
        fail(f"unknown quantization mode '{mode}'")
    if manifest.get("target", "cpu") not in TARGETS:
        fail(f"unknown target '{manifest['target']}'")
    for i, tensor in enumerate(manifest["inputs"]):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("shape"), list):
            fail(f"inputs[{i}] needs a 'shape' list")
    labels = manifest.get("labels")
    if labels is not None and not all(isinstance(label, str) for label in labels):
        fail("'labels' must be a list of strings")
    return manifest


def new_manifest(name, task, inputs, **fields):
    """A manifest with the required fields filled in; extra fields as given."""
    manifest = {"format_version": FORMAT_VERSION, "name": name, "version": fields.pop("version", "1"),
                "task": task, "inputs": inputs, **fields}
    return validate(manifest, "manifest")
