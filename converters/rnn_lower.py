"""Rebuild a Keras 3 RNN model into graphs that TFLite converts to builtin ops only.

Keras 3 recurrent layers convert to a WHILE loop, which the full-int8 calibrator of TF 2.21
crashes on and which no device runs well. Two rebuilds avoid it, both copying the trained weights:

- `lower_window`: a fixed-length, batch-1 model with every recurrent layer unrolled
  (`unroll=True`): plain FULLY_CONNECTED / LOGISTIC / TANH / MUL / ADD ops, every quantization mode.
- `build_step_model`: one hop of the stream, with the recurrent state (h, c) and the Conv1D context
  (a ring buffer of past frames) as explicit inputs and outputs; the caller feeds the outputs back.

Why unrolling and not the fused UNIDIRECTIONAL_SEQUENCE_LSTM op of a legacy tf_keras rebuild: see
`WINDOW_LOWERING` (measured in bench/rnn_latency.py, recorded in BENCHMARKS.md).

The model must be a chain of layers (Sequential, or functional without branches) made of
`SUPPORTED`; anything else raises EdgennError naming the layer.
"""

import copy
from dataclasses import dataclass, field

import keras
import numpy as np

from edgenn.errors import EdgennError

RECURRENT = ("LSTM", "GRU", "SimpleRNN")
# Layers that act on each frame independently: the same in the window and in the step model.
PER_FRAME = ("Dense", "TimeDistributed", "Dropout", "SpatialDropout1D", "GaussianNoise", "Activation",
             "ReLU", "Softmax", "BatchNormalization", "LayerNormalization", "Reshape")
WINDOW_ONLY = ("Bidirectional", "Flatten", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "MaxPooling1D",
               "AveragePooling1D")
SUPPORTED = RECURRENT + ("Conv1D",) + PER_FRAME + WINDOW_ONLY
TIME_DISTRIBUTED_INNER = ("Dense", "Dropout", "Activation", "ReLU", "Softmax", "BatchNormalization",
                          "LayerNormalization")
STATE_UNITS = {"LSTM": ("h", "c"), "GRU": ("h",), "SimpleRNN": ("h",)}

WINDOW_LOWERING = {
    "method": "unroll",
    "why": "unroll=True gives plain builtin ops for LSTM, GRU and SimpleRNN alike and quantizes in every mode; "
           "the fused UNIDIRECTIONAL_SEQUENCE_LSTM op of a tf_keras rebuild exists for LSTM only, has no int16x8 "
           "kernel, keeps h/c in variable tensors that need reset_all_variables() before every window, and its "
           "int8 kernel is ~8x slower than the unrolled int8 graph (LSTM64 x 49 frames: 1.55 ms vs 0.19 ms; "
           "it is smaller, 32 KB vs 230 KB) - bench/rnn_latency.py --fused, BENCHMARKS.md",
}


@dataclass
class Plan:
    """What was found in the model: its chain of layers, time length and anything worth telling."""

    layers: list
    frames: int
    frame_shape: tuple  # per-frame input shape: (features,) or (features, 1)
    notes: list = field(default_factory=list)

    @property
    def class_names(self):
        return [type(layer).__name__ for layer in self.layers]


def _inner(layer):
    """The layer a TimeDistributed or Bidirectional wrapper holds (None for plain layers)."""
    return getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)


def _inner_name(layer):
    inner = _inner(layer)
    return type(inner).__name__ if inner is not None else None


def _chain(model):
    """The model's layers in order (one input, one output)."""
    if not isinstance(model, keras.Model):
        raise EdgennError(f"expected a Keras model, got {type(model).__name__}")
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise EdgennError(f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          "edgenn lowers RNN models with one input and one output")
    return layers


def _check_chain(model, layers):
    """Every layer must read exactly the previous layer's output (no branches or skip connections)."""
    if isinstance(model, keras.Sequential):
        return
    previous = model.inputs[0]
    for layer in layers:
        if layer.input is not previous:
            raise EdgennError(f"layer {layer.name!r} does not read the previous layer's output; edgenn "
                              "lowers chains of layers only (no branches or skip connections)")
        previous = layer.output


def analyze(model, frames=None):
    """Check the model can be lowered and return its Plan (EdgennError otherwise)."""
    layers = _chain(model)
    for layer in layers:
        name = type(layer).__name__
        inner = _inner_name(layer)
        if name not in SUPPORTED or (name == "TimeDistributed" and inner not in TIME_DISTRIBUTED_INNER) or (
                name == "Bidirectional" and inner not in RECURRENT):
            shown = f"{name}({inner})" if inner else name
            raise EdgennError(f"layer {layer.name!r} ({shown}) cannot be lowered to builtin TFLite ops; supported: "
                              f"{', '.join(SUPPORTED)} (TimeDistributed and Bidirectional around those)")
    _check_chain(model, layers)
    if not any(type(layer).__name__ in RECURRENT + ("Bidirectional",) for layer in layers):
        raise EdgennError(f"model {model.name!r} has no LSTM, GRU or SimpleRNN layer; convert it as a CNN")
    shape = tuple(model.inputs[0].shape)
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 1) or shape[2] is None:
        raise EdgennError(f"model input shape {list(shape)} is not [time, features] or [time, features, 1]")
    time = shape[1]
    if time is None and frames is None:
        raise EdgennError(f"model {model.name!r} accepts any number of frames; give the window length with "
                          "--frames N (e.g. --frames 49 for 1 s of 20 ms hops)")
    if time is not None and frames is not None and int(frames) != time:
        raise EdgennError(f"--frames {frames} does not match the model's fixed time length {time}; drop --frames")
    notes = []
    for layer in layers:
        if getattr(_inner(layer) or layer, "stateful", False):
            notes.append(f"layer {layer.name!r} is stateful=True: converted from its weights as a stateless layer "
                         "(each window starts from zero state); use --streaming to carry the state across steps "
                         "explicitly, because TFLite runtimes do not reset stateful variables")
    return Plan(layers, int(time if time is not None else frames), tuple(shape[2:]), notes)


def _rebuild(layer, **changes):
    """A fresh copy of `layer` with config changes (applied to the wrapped RNN for Bidirectional)."""
    config = copy.deepcopy(layer.get_config())
    name = type(layer).__name__
    if name == "Bidirectional":
        for key in ("layer", "backward_layer"):
            if config.get(key):
                config[key]["config"].update(changes)
    elif name in RECURRENT:
        config.update(changes)
    return type(layer).from_config(config)


def _apply(layer, new, tensor, **call):
    out = new(tensor, **call)
    new.set_weights(layer.get_weights())
    return out


def _one_step(layer, frame, states):
    """(output [batch, units], next states) of a recurrent layer's cell on one frame [batch, 1, features].

    The cell is called directly: the layer over a time axis of one frame converts to UNPACK (and TRANSPOSE),
    which the Edge TPU does not run and every runtime pays for."""
    rebuilt = _rebuild(layer, stateful=False)
    rebuilt.build(frame.shape)
    rebuilt.set_weights(layer.get_weights())
    rebuilt.cell.name = f"{layer.name}_cell"  # cells are all "gru_cell", "lstm_cell"...: names must be unique
    flat = keras.layers.Reshape((frame.shape[-1],))(frame)
    output, next_states = rebuilt.cell(flat, list(states))
    return output, next_states if isinstance(next_states, (list, tuple)) else [next_states]


def lower_window(model, frames=None, plan=None, batch_size=1):
    """Fixed-length, batch-1 copy of `model` with unrolled recurrent layers (same weights).

    batch_size=None gives a copy for evaluating many windows at once in Keras."""
    plan = plan or analyze(model, frames)
    inputs = keras.Input((plan.frames, *plan.frame_shape), batch_size=batch_size, name="features")
    x = inputs
    for layer in plan.layers:
        name = type(layer).__name__
        if name in RECURRENT or name == "Bidirectional":
            x = _apply(layer, _rebuild(layer, unroll=True, stateful=False), x)
        else:
            x = _apply(layer, type(layer).from_config(layer.get_config()), x)
    return keras.Model(inputs, x, name=f"{model.name}_window")


def build_step_model(model, frames=None, plan=None, batch_size=1):
    """(step model, streaming spec): one frame in, scores and next states out, same weights.

    Step model inputs: [frame, *states]; outputs: [scores, *next states] (scores [1, 1, classes] of
    this frame when the model scores every frame, "sequence_output"), in the order of
    spec["states"]. A state is "recurrent" (h or c of a layer, zero at the start of a stream) or
    "ring" (the last frames a Conv1D needs, oldest first). With padding="valid" the window model
    starts its recurrence after the first `warmup_frames` frames; a stream reproduces a window by
    zeroing the recurrent states after that many steps (edgenn.streaming.run_steps does it).
    batch_size=None gives a copy for stepping many streams at once in Keras."""
    plan = plan or analyze(model, frames)
    window = lower_window(model, plan=plan)
    names = plan.class_names
    last_rnn = max(i for i, n in enumerate(names) if n in RECURRENT + ("Bidirectional",))
    # a sequence model (last recurrent layer with return_sequences, e.g. CTC) scores every frame: [1, 1, classes]
    sequence = len(model.outputs[0].shape) == 3
    frame = keras.Input((1, *plan.frame_shape), batch_size=batch_size, name="frame")
    state_inputs, state_outputs, states = [], [], []
    warmup = 0
    x = frame
    for position, (layer, lowered) in enumerate(zip(plan.layers, window.layers[1:])):
        name = names[position]
        time = lowered.input.shape[1]
        if name in WINDOW_ONLY:
            why = ("needs the future frames" if name == "Bidirectional" else "needs the whole window")
            raise EdgennError(f"layer {layer.name!r} ({name}) {why}, so it cannot stream; convert without "
                              "--streaming (window mode)")
        if position > last_rnn:  # the head sees only the last recurrent output, [1, units]
            x = _apply(layer, type(layer).from_config(layer.get_config()), x)
        elif name in RECURRENT:
            units = layer.get_config()["units"]
            initial = []
            for part in STATE_UNITS[name]:
                state_name = f"{layer.name}_{part}"
                state = keras.Input((units,), batch_size=batch_size, name=state_name)
                initial.append(state)
                states.append({"name": state_name, "kind": "recurrent", "shape": [1, units]})
            state_inputs += initial
            if position == last_rnn and layer.get_config()["return_sequences"] and not sequence:
                raise EdgennError(f"the last recurrent layer {layer.name!r} returns sequences but the model's output "
                                  "has no time axis; streaming needs return_sequences=False, or a per-frame head")
            x, next_states = _one_step(layer, x, initial)
            if position != last_rnn or sequence:
                x = keras.layers.Reshape((1, units))(x)
            state_outputs += list(next_states)
        elif name == "Conv1D":
            config = layer.get_config()
            if config["strides"][0] != 1:
                raise EdgennError(f"layer {layer.name!r} (Conv1D) has stride {config['strides'][0]}; streaming "
                                  "supports stride 1 only; convert without --streaming (window mode)")
            if config["padding"] == "same":
                raise EdgennError(f"layer {layer.name!r} (Conv1D) uses padding='same', which needs future frames; "
                                  "use padding='causal' or 'valid' to stream, or convert without --streaming")
            context = (config["kernel_size"][0] - 1) * config["dilation_rate"][0]
            if config["padding"] == "valid":
                warmup += context
            channels = x.shape[-1]
            if context:
                ring_name = f"{layer.name}_ring"
                ring = keras.Input((context, channels), batch_size=batch_size, name=ring_name)
                state_inputs.append(ring)
                states.append({"name": ring_name, "kind": "ring", "shape": [1, context, channels]})
                joined = keras.layers.Concatenate(axis=1)([ring, x])
                state_outputs.append(keras.layers.Cropping1D((1, 0))(joined))
                x = joined
            x = _apply(layer, type(layer).from_config({**config, "padding": "valid"}), x)
        elif name == "Reshape":
            target = list(layer.get_config()["target_shape"])
            if target[0] != time:
                raise EdgennError(f"layer {layer.name!r} (Reshape to {target}) mixes time steps; streaming needs "
                                  "reshapes that keep the time axis")
            x = keras.layers.Reshape((1, *target[1:]))(x)
        else:
            x = _apply(layer, type(layer).from_config(layer.get_config()), x)
    # Identity layers give the outputs stable positions: scores first, then the states in order.
    outputs = [keras.layers.Identity(name="edgenn_scores")(x)] + [
        keras.layers.Identity(name=f"edgenn_{state['name']}_next")(t) for state, t in zip(states, state_outputs)]
    step = keras.Model([frame, *state_inputs], outputs, name=f"{model.name}_step")
    spec = {"hop_frames": 1, "window_frames": plan.frames, "warmup_frames": warmup,
            "frame_shape": [1, 1, *plan.frame_shape], "states": states, "sequence_output": sequence}
    return step, spec


def zero_states(spec, batch=1):
    return [np.zeros((batch, *state["shape"][1:]), np.float32) for state in spec["states"]]


def step_through(batch_step_model, windows, spec):
    """Run a batch_size=None float step model over windows [N, T, ...] side by side.

    Returns (last scores [N, classes], pairs): pairs[t] = (frames [N, 1, ...], states) as fed at step t,
    the real (frame, state) pairs that calibrate a full-int8 step model."""
    windows = np.asarray(windows, np.float32)
    states = zero_states(spec, len(windows))
    pairs = []
    for t in range(windows.shape[1]):
        frame = windows[:, t:t + 1]
        pairs.append((frame, states))
        out = [np.asarray(o) for o in batch_step_model([frame, *states], training=False)]
        states = out[1:]
        if t + 1 == spec["warmup_frames"]:  # the window's recurrence starts only now
            states = [np.zeros_like(s) if st["kind"] == "recurrent" else s for s, st in zip(states, spec["states"])]
    return out[0], pairs
