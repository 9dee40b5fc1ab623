"""Run a streaming step model (numpy only): one frame in, scores out, state carried between steps.

A step model (edgenn convert --streaming) takes a frame and its states and returns scores and the
next states. The manifest's "streaming" spec names them:

    {"hop_frames": 1, "window_frames": 49, "warmup_frames": 0,
     "frame_input": "serving_default_frame:0", "scores_output": "StatefulPartitionedCall_1:0",
     "states": [{"name": "gru_h", "kind": "recurrent" | "ring", "shape": [1, 48],
                 "input": TFLITE INPUT NAME, "output": TFLITE OUTPUT NAME, "quantization": {...}}]}

With int8 IO a state's output and input tensors have slightly different scales, so each state is
requantized from one to the other between steps (integer copy when the parameters are equal).
"""

import numpy as np

from edgenn.errors import EdgennError
from edgenn.runtime import dequantize, quantize


class Stream:
    """Step a model through frames, keeping its states; `reset()` starts a new stream."""

    def __init__(self, model, spec):
        self.model = model
        self.spec = spec
        inputs = {t.name: i for i, t in enumerate(model.inputs)}
        outputs = {t.name: i for i, t in enumerate(model.outputs)}
        try:
            self._frame = inputs[spec["frame_input"]]
            self._scores = outputs[spec["scores_output"]]
            self._states = [(inputs[s["input"]], outputs[s["output"]]) for s in spec["states"]]
        except KeyError as exc:
            raise EdgennError(f"{model.source}: streaming spec names tensor {exc} that the model lacks; "
                              "re-convert it with `edgenn convert --streaming`") from None
        self.steps = 0
        self.reset()

    def reset(self):
        """Zero every state (in each input tensor's own representation)."""
        self._values = []
        for position, _ in self._states:
            tensor = self.model.inputs[position]
            self._values.append(quantize(np.zeros(tensor.shape, np.float32), tensor) if tensor.quantized
                                else np.zeros(tensor.shape, tensor.dtype))
        self.steps = 0

    def _carry(self, in_position, out_position):
        """Next value of one state, requantized from the output tensor's parameters to the input's."""
        source, target = self.model.outputs[out_position], self.model.inputs[in_position]
        raw = self.model.output(out_position, raw=True)
        if source.quantized and target.quantized and (source.scale, source.zero_point, source.dtype) == (
                target.scale, target.zero_point, target.dtype):
            return raw.copy()
        value = dequantize(raw, source) if source.quantized else raw.astype(np.float32)
        return quantize(value, target) if target.quantized else value.astype(target.dtype)

    def step(self, frame):
        """Feed one hop of frames; returns the float scores after it."""
        self.model.set_input(self._frame, np.asarray(frame, np.float32))
        for (position, _), value in zip(self._states, self._values):
            self.model.set_input(position, value)
        self.model.invoke()
        self._values = [self._carry(i, o) for i, o in self._states]
        self.steps += 1
        if self.steps == self.spec.get("warmup_frames", 0):
            # the window model starts its recurrence here (Conv1D padding="valid"): keep only the context
            kept = [v for v, s in zip(self._values, self.spec["states"]) if s["kind"] == "ring"]
            self.reset()
            self._values = [kept.pop(0) if s["kind"] == "ring" else v
                            for v, s in zip(self._values, self.spec["states"])]
            self.steps = self.spec["warmup_frames"]
        return self.model.output(self._scores)


def run_steps(model, frames, spec):
    """Scores after stepping an opened step model (edgenn.runtime.Model) through frames [T, ...] from zero state.

    Over the frames of one window this reproduces the window model's output: the last step's scores, or
    for a model that scores every frame (spec "sequence_output") the scores of every step after the
    warm-up, [1, T - warmup, classes]."""
    stream = Stream(model, spec)
    every = []
    hop = spec.get("hop_frames", 1)
    frames = np.asarray(frames, np.float32)
    for start in range(0, len(frames) - hop + 1, hop):
        scores = stream.step(frames[start:start + hop][None])
        if start + hop > spec.get("warmup_frames", 0):
            every.append(scores.reshape(-1))
    if not every:
        raise EdgennError(f"need more than {spec.get('warmup_frames', 0)} frame(s) to step the model, got {len(frames)}")
    return np.stack(every)[None] if spec.get("sequence_output") else scores
