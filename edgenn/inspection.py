"""What a model file is and whether this machine can run it: the report behind `edgenn inspect`."""

import hashlib

from edgenn import bundle, tflite_metadata
from edgenn.errors import EdgennError
from edgenn.isolate import run_isolated
from edgenn.modelfile import io_tensors, read_contents


def _examine(data, name, runtime):
    """Everything about one model; runs in a child because a damaged file can crash the interpreter."""
    from edgenn.runtime import _make_interpreter, Model  # the child alone touches the runtime

    contents = read_contents(data, name)
    manifest = bundle.read_manifest(data, name)
    labels = bundle.read_labels(data)
    try:
        standard = tflite_metadata.read_metadata(data)
    except EdgennError as exc:
        standard = {"error": str(exc)}
    inputs, outputs = io_tensors(data)
    report = {
        "inputs": inputs, "outputs": outputs,
        "ops": [{"name": op.name, "version": op.version, "count": op.count, "custom": op.custom, "note": op.note}
                for op in contents.ops],
        "subgraphs": contents.subgraphs,
        "needs_edgetpu": contents.needs_edgetpu,
        "flex_ops": contents.flex_ops,
        "metadata": contents.metadata,
        "manifest": manifest,
        "tflite_metadata": standard,
        "labels": {"count": len(labels), "first": labels[:5]} if labels else None,
        "associated_files": sorted(bundle.associated_files(data)),
    }
    try:
        runtime_name, version, interpreter = _make_interpreter(data, runtime, None, None, name)
    except EdgennError as exc:
        if not (contents.needs_edgetpu or contents.flex_ops or contents.unknown_custom_ops):
            raise
        report["runtime"] = {"loaded": False, "reason": str(exc)}
        return report
    model = Model(interpreter, runtime_name, version, name)
    report["runtime"] = {"loaded": True, "name": runtime_name, "version": version}
    report["inputs"] = [t.as_dict() for t in model.inputs]
    report["outputs"] = [t.as_dict() for t in model.outputs]
    return report


def inspect_model(path, runtime=None):
    """A JSON-ready report of one model file; EdgennError when it is not a usable model."""
    data = bundle.load_bytes(path)
    bundle.check_tflite(data, str(path))
    report = run_isolated(_examine, data, str(path), runtime, what=f"reading {path}", timeout=120)
    return {"file": str(path), "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), **report}


def notes(report):
    """Plain-language warnings about running this model on a device."""
    found = []
    runtime = report.get("runtime", {})
    if report["needs_edgetpu"] and runtime.get("loaded"):
        found.append("runs on the Edge TPU found here")
    if report["flex_ops"]:
        found.append(f"needs Flex ops ({', '.join(report['flex_ops'])}), which no device runtime has; "
                     "re-convert with builtin ops only")
    custom = [op["name"] for op in report["ops"] if op["custom"] and op["name"] != "edgetpu-custom-op"
              and not op["name"].startswith("Flex") and op["note"].startswith("custom op")]
    if custom:
        found.append(f"custom ops {', '.join(custom)} must be registered by the runtime, or loading fails")
    if not runtime.get("loaded") and runtime.get("reason"):
        found.append(runtime["reason"])
    return found
