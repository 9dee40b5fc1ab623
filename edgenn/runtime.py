"""The one way edgenn opens a .tflite model.

Runtime order: ai_edge_litert (LiteRT), then tflite_runtime, then tensorflow.lite; `runtime=` or the
EDGENN_RUNTIME environment variable forces one. Models with the Edge TPU custom op get the libedgetpu
delegate. Callers work in float: inputs are quantized and outputs dequantized from each tensor's
parameters (arrays already in the tensor's integer dtype pass through untouched).
"""

import ctypes
import importlib
import importlib.metadata
import os
import platform
from dataclasses import dataclass

import numpy as np

from edgenn.bundle import load_bytes
from edgenn.errors import EdgennError
from edgenn.isolate import run_isolated
from edgenn.modelfile import read_contents

RUNTIMES = ("litert", "tflite_runtime", "tensorflow")
_MODULES = {"litert": "ai_edge_litert.interpreter", "tflite_runtime": "tflite_runtime.interpreter",
            "tensorflow": "tensorflow"}
_DISTRIBUTIONS = {"litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime", "tensorflow": "tensorflow"}
EDGETPU_LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    index: int
    shape: tuple
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self):
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    def as_dict(self):
        return {"name": self.name, "index": self.index, "shape": list(self.shape), "dtype": self.dtype.name,
                "quantization": {"scale": self.scale, "zero_point": self.zero_point} if self.quantized else None}


def _import_runtime(name):
    """(Interpreter class, load_delegate, version) of one runtime, or None when it is not importable."""
    try:
        module = importlib.import_module(_MODULES[name])
    except ImportError:
        return None
    except Exception as exc:  # e.g. tflite_runtime built for numpy 1 under numpy 2
        raise EdgennError(f"runtime {name} is installed but fails to import ({exc}); "
                          "run `edgenn doctor` for the fix") from None
    try:
        version = importlib.metadata.version(_DISTRIBUTIONS[name])
    except importlib.metadata.PackageNotFoundError:
        version = getattr(module, "__version__", "unknown")
    if name == "tensorflow":  # host fallback only; devices never install it
        return module.lite.Interpreter, module.lite.experimental.load_delegate, version
    return module.Interpreter, module.load_delegate, version


def available_runtimes():
    """{name: version} of the runtimes importable here, in preference order."""
    found = {}
    for name in RUNTIMES:
        try:
            runtime = _import_runtime(name)
        except EdgennError:
            continue
        if runtime:
            found[name] = runtime[2]
    return found


def runtime_installed(name):
    """Whether runtime NAME (one of RUNTIMES) imports here."""
    return _import_runtime(name) is not None


def choose_runtime(runtime=None):
    """(name, Interpreter, load_delegate, version) of the forced or first importable runtime."""
    forced = runtime or os.environ.get("EDGENN_RUNTIME") or None
    if forced:
        if forced not in RUNTIMES:
            raise EdgennError(f"unknown runtime '{forced}'; choose one of {', '.join(RUNTIMES)}")
        found = _import_runtime(forced)
        if not found:
            raise EdgennError(f"runtime '{forced}' is not installed; pip install {_DISTRIBUTIONS[forced]} "
                              "or choose another with --runtime / EDGENN_RUNTIME")
        return (forced, *found)
    for name in RUNTIMES:
        found = _import_runtime(name)
        if found:
            return (name, *found)
    raise EdgennError("no TFLite runtime found; install one: pip install ai-edge-litert")


def load_edgetpu_delegate(load_delegate, device=None):
    library = EDGETPU_LIBRARY.get(platform.system(), "libedgetpu.so.1")
    options = {"device": device} if device else {}
    try:
        ctypes.CDLL(library)  # check first: a failed load_delegate leaves a half-built object that warns at exit
        return load_delegate(library, options)
    except (OSError, ValueError, RuntimeError) as exc:
        reason = "no Edge TPU runtime (libedgetpu) installed" if isinstance(exc, OSError) or "not found" in str(
            exc) else "no Edge TPU device found"
        raise EdgennError(f"this model needs an Edge TPU: {reason}; install libedgetpu1-std from Coral's apt "
                          "repository and plug in the Coral accelerator, or run the CPU model "
                          "(without _edgetpu)") from None


def _make_interpreter(data, runtime, threads, edgetpu_device, source="model"):
    contents = read_contents(data, source)
    name, interpreter_class, load_delegate, version = choose_runtime(runtime)
    delegates = [load_edgetpu_delegate(load_delegate, edgetpu_device)] if contents.needs_edgetpu else []
    if contents.flex_ops:
        raise EdgennError(f"model uses Flex ops ({', '.join(contents.flex_ops[:3])}), which no device runtime "
                          "has; re-convert it with builtin ops only (edgenn convert does this)")
    try:
        interpreter = interpreter_class(model_content=data, num_threads=threads,
                                        experimental_delegates=delegates or None)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgennError(f"{name} {version} cannot load the model: {first}") from None
    return name, version, interpreter


def _probe(data, runtime, threads, edgetpu_device, source):
    name, version, _ = _make_interpreter(data, runtime, threads, edgetpu_device, source)
    return name, version


class Model:
    """An opened model: tensor descriptions and float-in / float-out execution."""

    def __init__(self, interpreter, runtime, runtime_version, source="model"):
        self.interpreter = interpreter
        self.runtime = runtime
        self.runtime_version = runtime_version
        self.source = source
        self.inputs = [self._info(d) for d in interpreter.get_input_details()]
        self.outputs = [self._info(d) for d in interpreter.get_output_details()]

    @staticmethod
    def _info(detail):
        scale, zero_point = detail.get("quantization", (0.0, 0))
        return TensorInfo(detail["name"], detail["index"], tuple(int(d) for d in detail["shape"]),
                          np.dtype(detail["dtype"]), float(scale), int(zero_point))

    def set_input(self, position, array):
        tensor = self.inputs[position]
        array = np.asarray(array)
        if array.dtype != tensor.dtype:
            array = quantize(array, tensor) if tensor.quantized else array.astype(tensor.dtype)
        if array.shape != tensor.shape:
            if array.size != int(np.prod(tensor.shape)):
                raise EdgennError(f"input {tensor.name!r} expects shape {list(tensor.shape)}, "
                                  f"got {list(array.shape)}")
            array = array.reshape(tensor.shape)
        self.interpreter.set_tensor(tensor.index, array)

    def output(self, position, raw=False):
        tensor = self.outputs[position]
        value = self.interpreter.get_tensor(tensor.index)
        return value if raw or not tensor.quantized else dequantize(value, tensor)

    def invoke(self):
        self.interpreter.invoke()

    def run(self, *arrays, raw=False):
        """Set every input (in order), invoke, return every output (dequantized unless raw)."""
        if len(arrays) != len(self.inputs):
            raise EdgennError(f"model takes {len(self.inputs)} input(s), got {len(arrays)}")
        for position, array in enumerate(arrays):
            self.set_input(position, array)
        self.invoke()
        return [self.output(i, raw) for i in range(len(self.outputs))]

    def reset_state(self):
        """Clear variable tensors (fused LSTM h/c) before an independent sequence."""
        self.interpreter.reset_all_variables()


def quantize(array, tensor):
    info = np.iinfo(tensor.dtype)
    values = np.round(np.asarray(array, dtype=np.float32) / tensor.scale + tensor.zero_point)
    return np.clip(values, info.min, info.max).astype(tensor.dtype)


def dequantize(array, tensor):
    return (array.astype(np.float32) - tensor.zero_point) * np.float32(tensor.scale)


def open_model(model, runtime=None, threads=None, edgetpu_device=None, probe=True):
    """Open a .tflite (path or bytes) with the preferred runtime and return a Model.

    With probe=True the model is first loaded in a child process, so a file that crashes the
    interpreter gives an error here instead of killing the caller."""
    data = load_bytes(model)
    source = "model" if isinstance(model, (bytes, bytearray, memoryview)) else str(model)
    read_contents(data, source)  # a damaged file is refused here, so a crash below is the runtime's
    if probe:
        name, _, _, version = choose_runtime(runtime)
        others = ", ".join(r for r in RUNTIMES if r != name)
        run_isolated(_probe, data, runtime, threads, edgetpu_device, source, timeout=120,
                     what=f"{_DISTRIBUTIONS[name]} {version} loading {source}",
                     crash_hint=f"the file reads as a valid TFLite model, so the runtime failed on it: upgrade it "
                                f"(pip install -U {_DISTRIBUTIONS[name]}) or try another with --runtime ({others})")
    name, version, interpreter = _make_interpreter(data, runtime, threads, edgetpu_device, source)
    return Model(interpreter, name, version, source)
