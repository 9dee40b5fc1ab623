"""Unroll a converted step model into a window model inside the TFLite flatbuffer.

Why: an int8 window model calibrated on its own gets different scales at every time step, while the
step model has one set for all steps; their int8 rounding noise then differs and grows over the
window (demo GRU: max |Δ| 0.12 between the int8 window and the int8 stream on held-out windows, with
calibration coverage ruled out). Repeating the quantized step graph T times gives one set of scales
for every frame: window and stream compute the same integers, and the weights are stored once
instead of once per frame.

The window takes [1, T, ...] frames (SPLIT into T frames), starts from zero states, zeroes the
recurrent states after `warmup_frames` steps as edgenn.streaming does, requantizes a state whose
output and input scales differ (QUANTIZE), and returns the scores of the last step, or, for a model that
scores every frame (spec "sequence_output"), the scores of every step after the warm-up joined along time
(CONCATENATION: [1, T - warmup, classes], as the Keras window model).
"""

import copy

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

WHY = ("int8/int16x8: the window is the calibrated step model repeated once per frame in the flatbuffer, so it "
       "has one set of scales for every frame and computes the same integers as the stream (an unrolled window "
       "calibrated on its own differed from the int8 stream by up to 0.12 in score on the demo GRU); weights "
       "are stored once - converters/rnn_unroll.py")
NUMPY_TYPES = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT8: np.int8,
               schema.TensorType.UINT8: np.uint8, schema.TensorType.INT16: np.int16,
               schema.TensorType.INT32: np.int32}


def unroll_step_model(step_data, spec):
    """Window model bytes made of `spec["window_frames"]` copies of the step model `step_data`."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(step_data))
    graph = model.subgraphs[0]
    index = {t.name.decode(): i for i, t in enumerate(graph.tensors)}
    frame_in = index[spec["frame_input"]]
    state_in = [index[s["input"]] for s in spec["states"]]
    state_out = [index[s["output"]] for s in spec["states"]]
    scores_out = index[spec["scores_output"]]
    constant = {i for i, t in enumerate(graph.tensors) if _has_data(model, t)}
    frames, warmup = spec["window_frames"], spec.get("warmup_frames", 0)

    def add_tensor(template, name, shape=None, data=None):
        tensor = copy.deepcopy(template)
        tensor.name = name.encode()
        if shape is not None:
            tensor.shape = tensor.shapeSignature = np.asarray(shape, np.int32)
        tensor.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            model.buffers.append(buffer)
            tensor.buffer = len(model.buffers) - 1
        graph.tensors.append(tensor)
        return len(graph.tensors) - 1

    def zeros(position):
        tensor = graph.tensors[position]
        dtype = NUMPY_TYPES[tensor.type]
        value = 0 if tensor.quantization is None or tensor.quantization.zeroPoint is None \
            or not len(tensor.quantization.zeroPoint) else tensor.quantization.zeroPoint[0]
        return add_tensor(tensor, f"{tensor.name.decode()}/zero", data=np.full(tensor.shape, value, dtype))

    template = graph.tensors[frame_in]
    window_shape = [1, frames, *list(template.shape)[2:]]
    features = add_tensor(template, "features", window_shape)
    axis = add_tensor(schema.TensorT(), "split_axis", [], np.int32(1))
    graph.tensors[axis].type, graph.tensors[axis].quantization = schema.TensorType.INT32, None
    frame_tensors = [add_tensor(template, f"frame_{t}", list(template.shape)) for t in range(frames)]
    split = schema.OperatorT()
    split.opcodeIndex = _opcode(model, schema.BuiltinOperator.SPLIT)
    split.inputs, split.outputs = np.array([axis, features], np.int32), np.array(frame_tensors, np.int32)
    split.builtinOptionsType = schema.BuiltinOptions.SplitOptions
    split.builtinOptions = schema.SplitOptionsT()
    split.builtinOptions.numSplits = frames
    operators = [split]

    zero_states = [zeros(i) for i in state_in]
    step_ops = graph.operators
    carried = zero_states
    step_scores = []
    for t in range(frames):
        if t == warmup and t:  # the window's recurrence starts after the Conv1D context frames
            carried = [z if s["kind"] == "recurrent" else c for z, c, s in zip(zero_states, carried, spec["states"])]
        mapping = {frame_in: frame_tensors[t], **dict(zip(state_in, carried))}
        for op in step_ops:
            for i in [*op.inputs, *op.outputs]:
                if i >= 0 and i not in mapping:
                    mapping[i] = i if i in constant else add_tensor(graph.tensors[i], f"{_short(graph.tensors[i])}/t{t}")
            new = copy.copy(op)
            new.inputs = np.array([mapping[i] if i >= 0 else i for i in op.inputs], np.int32)
            new.outputs = np.array([mapping[i] for i in op.outputs], np.int32)
            operators.append(new)
        if t >= warmup:
            step_scores.append(mapping[scores_out])
        carried = [_requantize(model, graph, operators, add_tensor, mapping[o], i)
                   for o, i in zip(state_out, state_in)]
    scores = _join(model, graph, operators, add_tensor, step_scores) if spec.get("sequence_output") \
        else mapping[scores_out]
    graph.inputs, graph.outputs = np.array([features], np.int32), np.array([scores], np.int32)
    graph.operators = _live(operators, graph.outputs)
    model.signatureDefs = [_signature(features, scores)]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _join(model, graph, operators, add_tensor, step_scores):
    """[1, steps, classes] from the steps' [1, 1, classes] scores (one quantization: copies of one tensor)."""
    template = graph.tensors[step_scores[0]]
    joined = add_tensor(template, "scores", [1, len(step_scores), *list(template.shape)[2:]])
    op = schema.OperatorT()
    op.opcodeIndex = _opcode(model, schema.BuiltinOperator.CONCATENATION)
    op.inputs, op.outputs = np.array(step_scores, np.int32), np.array([joined], np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.ConcatenationOptions
    op.builtinOptions = schema.ConcatenationOptionsT()
    op.builtinOptions.axis = 1
    operators.append(op)
    return joined


def _short(tensor):
    """The last part of a converter tensor name (they join whole op paths with ';': 2 KB x frames)."""
    return tensor.name.decode().split(";")[0].split("/")[-1]


def _has_data(model, tensor):
    buffer = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
    return buffer is not None and ((buffer.data is not None and len(buffer.data)) or buffer.offset)


def _params(tensor):
    q = tensor.quantization
    if q is None or q.scale is None or not len(q.scale):
        return None
    return tuple(np.asarray(q.scale).tolist()), tuple(np.asarray(q.zeroPoint).tolist())


def _requantize(model, graph, operators, add_tensor, output, state_input):
    """The next step's state: the output itself, or a QUANTIZE to the input's scale when they differ."""
    source, target = graph.tensors[output], graph.tensors[state_input]
    if source.type == target.type and _params(source) == _params(target):
        return output
    result = add_tensor(target, f"{target.name.decode()}/requantized/{len(operators)}")
    op = schema.OperatorT()
    op.opcodeIndex = _opcode(model, schema.BuiltinOperator.QUANTIZE)
    op.inputs, op.outputs = np.array([output], np.int32), np.array([result], np.int32)
    operators.append(op)
    return result


def _opcode(model, builtin):
    for position, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return position
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 2  # 2: int8
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _live(operators, outputs):
    """Only the operators the outputs depend on (the scores of earlier steps are never read)."""
    needed, kept = set(int(i) for i in outputs), []
    for op in reversed(operators):
        if needed & set(int(i) for i in op.outputs):
            kept.append(op)
            needed |= {int(i) for i in op.inputs if i >= 0}
    return kept[::-1]


def _signature(features, scores):
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = b"serving_default", 0
    signature.inputs, signature.outputs = [schema.TensorMapT()], [schema.TensorMapT()]
    signature.inputs[0].name, signature.inputs[0].tensorIndex = b"features", features
    signature.outputs[0].name, signature.outputs[0].tensorIndex = b"output_0", scores
    return signature
