"""Which TFLite runtime versions can run a model, from the 'min_runtime_version' metadata the
TFLite converter writes (the oldest runtime that has every op version the model uses)."""

import tflite


def min_runtime_version(data):
    """The model's minimum runtime version string ('2.17.0'), or None when it carries none."""
    model = tflite.Model.GetRootAsModel(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == b"min_runtime_version":
            raw = model.Buffers(entry.Buffer()).DataAsNumpy()
            return bytes(raw).split(b"\0")[0].decode("ascii", "replace") or None
    return None


def _numbers(version):
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def runs_on(needed, runtime_version):
    """True when a runtime of `runtime_version` has everything a model needing `needed` uses."""
    return needed is None or _numbers(needed) <= _numbers(runtime_version)
