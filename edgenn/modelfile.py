"""What a .tflite file contains, read from its flatbuffer without running it: operators with their
versions, custom ops, tensors and metadata entries. Pure Python, so it works where no runtime loads
the model (Edge TPU and Flex models, a damaged file)."""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import tflite

from edgenn.bundle import check_tflite
from edgenn.errors import EdgennError

EDGETPU_OP = "edgetpu-custom-op"
TENSOR_TYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
    8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 13: "resource",
    14: "variant", 15: "uint32", 16: "uint16", 17: "int4",
}
# What an op means on a device, for ops a plain CPU runtime cannot run.
CUSTOM_OP_NOTES = {
    EDGETPU_OP: "needs an Edge TPU (Coral) with libedgetpu; a CPU runtime cannot run it",
    "TFLite_Detection_PostProcess": "SSD post-processing; built into every TFLite runtime",
}


@dataclass
class OpUse:
    name: str
    version: int
    count: int
    custom: bool
    note: str = ""


@dataclass
class ModelContents:
    ops: list = field(default_factory=list)
    subgraphs: int = 0
    tensors: int = 0
    metadata: list = field(default_factory=list)
    description: str = ""

    @property
    def op_names(self):
        return {op.name for op in self.ops}

    @property
    def needs_edgetpu(self):
        return EDGETPU_OP in self.op_names

    @property
    def flex_ops(self):
        return sorted(op.name for op in self.ops if op.name.startswith("Flex"))

    @property
    def unknown_custom_ops(self):
        return sorted(op.name for op in self.ops if op.custom and op.name not in CUSTOM_OP_NOTES
                      and not op.name.startswith("Flex"))


def read_contents(data, name="model"):
    """Parse a model's flatbuffer. Raises EdgennError when it is not a readable TFLite model."""
    check_tflite(data, name)
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            custom = code.CustomCode()
            if custom is not None:
                codes.append((custom.decode("utf-8", "replace"), code.Version(), True))
            else:
                codes.append((tflite.opcode2name(builtin), code.Version(), False))
        counts = Counter()
        tensors = 0
        for s in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(s)
            tensors += subgraph.TensorsLength()
            for o in range(subgraph.OperatorsLength()):
                counts[subgraph.Operators(o).OpcodeIndex()] += 1
        ops = []
        for index, (op_name, version, custom) in enumerate(codes):
            note = CUSTOM_OP_NOTES.get(op_name, "")
            if op_name.startswith("Flex"):
                note = "needs Flex (TensorFlow select) ops, which no device runtime has"
            elif custom and not note:
                note = "custom op: the runtime must register it, or loading fails"
            ops.append(OpUse(op_name, version, counts.get(index, 0), custom, note))
        metadata = [model.Metadata(i).Name().decode("utf-8", "replace")
                    for i in range(model.MetadataLength()) if model.Metadata(i).Name()]
        description = (model.Description() or b"").decode("utf-8", "replace")
        return ModelContents(ops=ops, subgraphs=model.SubgraphsLength(), tensors=tensors,
                             metadata=metadata, description=description)
    except EdgennError:
        raise
    except Exception as exc:  # a damaged flatbuffer surfaces as any of struct/index/unicode errors
        raise EdgennError(f"{name}: damaged TFLite flatbuffer ({type(exc).__name__}); "
                          "re-download or re-convert the model") from None


def io_tensors(data):
    """Inputs and outputs of the main subgraph as dicts, read from the flatbuffer (no runtime)."""
    model = tflite.Model.GetRootAsModel(data, 0)
    subgraph = model.Subgraphs(0)

    def describe(index):
        tensor = subgraph.Tensors(index)
        quant = tensor.Quantization()
        scale = zero_point = None
        if quant is not None and quant.ScaleLength():
            scale = float(quant.Scale(0))
            zero_point = int(quant.ZeroPoint(0)) if quant.ZeroPointLength() else 0
        shape = tensor.ShapeAsNumpy() if tensor.ShapeLength() else np.array([], dtype=np.int32)
        return {"name": (tensor.Name() or b"").decode("utf-8", "replace"), "index": int(index),
                "shape": [int(d) for d in shape], "dtype": TENSOR_TYPES.get(tensor.Type(), str(tensor.Type())),
                "quantization": {"scale": scale, "zero_point": zero_point}}

    return ([describe(subgraph.Inputs(i)) for i in range(subgraph.InputsLength())],
            [describe(subgraph.Outputs(i)) for i in range(subgraph.OutputsLength())])
