"""Edge TPU readiness: which ops of a .tflite the Edge TPU would run, and edgetpu_compiler if present.

The rules are Coral's published ones (coral.ai/docs/edgetpu/models-intro, "Supported operations"):
  * every tensor is 8-bit quantized (int8 / uint8) — float tensors stay on the CPU;
  * tensor sizes are constant at compile time (no dynamic dimensions);
  * a tensor has at most 3 dimensions larger than 1;
  * only the listed operations, with their noted limits;
  * the compiler maps ops to the Edge TPU up to the first op it cannot map; that op and
    everything after it run on the CPU, even ops that would be supported.
The report reads the flatbuffer only, so it works without the compiler or a Coral device.
"""

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

from edgenn.errors import EdgennError
from edgenn.modelfile import TENSOR_TYPES

# TFLite builtin op -> limit Coral documents for it ("" when none).
SUPPORTED_OPS = {
    "ADD": "", "AVERAGE_POOL_2D": "no fused activation", "CONCATENATION": "no fused activation",
    "CONV_2D": "", "DEPTHWISE_CONV_2D": "", "EXPAND_DIMS": "", "FULLY_CONNECTED": "1-D output",
    "HARD_SWISH": "", "L2_NORMALIZATION": "", "LOGISTIC": "", "MAX_POOL_2D": "no fused activation",
    "MAXIMUM": "", "MEAN": "reduction over x/y only", "MINIMUM": "", "MUL": "", "PACK": "",
    "PAD": "padding over x/y only", "PRELU": "", "QUANTIZE": "", "REDUCE_MAX": "", "REDUCE_MIN": "",
    "RELU": "", "RELU6": "", "RELU_N1_TO_1": "", "RESHAPE": "", "RESIZE_BILINEAR": "3-D input/output",
    "RESIZE_NEAREST_NEIGHBOR": "3-D input/output", "RSQRT": "", "SLICE": "", "SOFTMAX": "1-D input",
    "SPACE_TO_DEPTH": "", "SPLIT": "", "SQUARED_DIFFERENCE": "", "SQUEEZE": "", "STRIDED_SLICE": "",
    "SUB": "", "SUM": "", "TANH": "", "TRANSPOSE": "", "TRANSPOSE_CONV": "",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "",
}
EIGHT_BIT = {"int8", "uint8"}
# Integer tensors that are not activations: indices, shapes, 32-bit biases.
INDEX_TYPES = {"int32", "int64"}


@dataclass
class OpVerdict:
    index: int
    name: str
    mapped: bool
    reason: str


def _tensor_problem(model, tensor):
    """Why the Edge TPU cannot hold this tensor, or ''. The dimension rule is about activations:
    constant tensors (weights, 4-D convolution filters) are exempt."""
    kind = TENSOR_TYPES.get(tensor.Type(), str(tensor.Type()))
    if kind not in EIGHT_BIT | INDEX_TYPES:
        return f"{kind} tensor (needs int8/uint8)"
    signature = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else None
    if signature is not None and (np.asarray(signature) < 0).any():
        return "dynamic tensor size"
    shape = tensor.ShapeAsNumpy() if tensor.ShapeLength() else np.array([], np.int32)
    constant = model.Buffers(tensor.Buffer()).DataLength() > 0
    if not constant and int((np.asarray(shape) > 1).sum()) > 3:
        return f"more than 3 dimensions larger than 1 ({list(map(int, shape))})"
    return ""


def compatibility(data):
    """[OpVerdict] in execution order for the main subgraph of a .tflite."""
    model = tflite.Model.GetRootAsModel(data, 0)
    subgraph = model.Subgraphs(0)
    verdicts, cut = [], False
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        custom = code.CustomCode()
        name = custom.decode() if custom else tflite.opcode2name(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        reason = ""
        if name not in SUPPORTED_OPS:
            reason = "operation not supported by the Edge TPU"
        else:
            tensors = [op.Inputs(k) for k in range(op.InputsLength())] + [op.Outputs(k) for k in range(op.OutputsLength())]
            for t in tensors:
                if t >= 0 and (problem := _tensor_problem(model, subgraph.Tensors(t))):
                    reason = problem
                    break
        if reason:
            verdicts.append(OpVerdict(i, name, False, reason))
            cut = True
        elif cut:
            verdicts.append(OpVerdict(i, name, False, "after the first unmapped op: runs on the CPU"))
        else:
            verdicts.append(OpVerdict(i, name, True, SUPPORTED_OPS[name]))
    return verdicts


def report_lines(verdicts):
    """The printed compatibility report."""
    mapped = sum(v.mapped for v in verdicts)
    lines = [f"Edge TPU compatibility: {mapped} of {len(verdicts)} ops map to the Edge TPU"]
    for v in verdicts:
        where = "Edge TPU" if v.mapped else "CPU     "
        note = f"  ({v.reason})" if v.reason else ""
        lines.append(f"  {v.index:3d} {v.name:<28} {where}{note}")
    return lines


def compile_model(data):
    """Bytes of the `_edgetpu` model from edgetpu_compiler, or None when it is not on PATH."""
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "model.tflite"
        source.write_bytes(data)
        result = subprocess.run([compiler, "-s", "-o", folder, str(source)], capture_output=True, text=True,
                                timeout=600)
        compiled = Path(folder) / "model_edgetpu.tflite"
        if result.returncode != 0 or not compiled.exists():
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EdgennError(f"edgetpu_compiler failed: {last[0]}")
        return compiled.read_bytes()
