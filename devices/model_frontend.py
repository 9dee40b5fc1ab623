"""A front-end given as a .tflite model (`edgenn listen MODEL --frontend preprocessor.tflite`), behind
the numpy FrontEnd's interface: push(samples) returns the feature frames the new samples complete.

The model turns one window of samples into one frame of features (TFLite Micro's micro_speech
preprocessor: [1, 480] int16 -> [40] int8), so windows and features come from its tensors; the hop
between windows and the sample rate are not in the file (see FRAME_HOP_MS). The model keeps state
across calls (micro_speech's noise estimate), so each ModelFrontEnd feeds one model instance the
windows of one stream in order, and reset() starts a new stream.

Frames come out in the real units of the classifier's input, as the scorers' rings hold them:
float features as they are (the classifier quantizes them with its own scale and zero point);
integer features without quantization parameters are the classifier's quantized input already
(micro_speech's int8 preprocessor computes x / 25.6 / 26 * 256 - 128 itself), so they are
dequantized with the classifier's parameters, which its input step then reverses exactly.
"""

from dataclasses import dataclass, field

import numpy as np

from edgenn.bundle import load_bytes
from edgenn.errors import EdgennError
from edgenn.modelfile import io_tensors, read_contents
from edgenn.runtime import open_model
from edgenn.devices.signal_graph import SignalGraph, uses_signal_ops

# The file records neither: TFLM's micro_speech front-end steps its 30 ms window by 20 ms
# (audio_preprocessor.py window_stride_ms) over 16 kHz audio, as Speech Commands models expect.
FRAME_HOP_MS = 20
SAMPLE_RATE = 16000
PCM_TYPES = ("int16", "float32")


@dataclass(frozen=True)
class ModelFrontEndParams:
    """What a front-end model takes and gives, read from its tensors and checked against the classifier."""
    path: str
    window_samples: int
    n_features: int
    input_dtype: str
    scale: float = 0.0       # integer features: real value = (raw - zero_point) * scale
    zero_point: int = 0
    hop_samples: int = SAMPLE_RATE * FRAME_HOP_MS // 1000
    sample_rate: int = SAMPLE_RATE
    clip_normalise: str = "none"  # runs window by window, never on a whole clip
    data: bytes = field(default=b"", repr=False, compare=False)
    runtime: str = None
    threads: int = None

    @classmethod
    def from_model(cls, path, classifier_input, runtime=None, threads=None):
        """Open and check the front-end model at path for a classifier whose frame input is classifier_input
        (edgenn.runtime.TensorInfo)."""
        data = load_bytes(path)
        read_contents(data, f"--frontend {path}")  # one clear line for a file that is not a readable model
        try:
            inputs, outputs = io_tensors(data)
        except Exception as exc:  # a damaged flatbuffer surfaces as any of struct/index/unicode errors
            raise EdgennError(f"--frontend {path}: damaged TFLite flatbuffer ({type(exc).__name__}); "
                              "re-download the front-end model") from None
        window = [d for d in inputs[0]["shape"] if d != 1] if len(inputs) == 1 else None
        if len(inputs) != 1 or len(outputs) != 1 or len(window) != 1 or inputs[0]["dtype"] not in PCM_TYPES:
            described = ", ".join(f"{t['shape']} {t['dtype']}" for t in inputs)
            raise EdgennError(f"--frontend {path}: not an audio front-end model: it takes {described}, not one "
                              "window of PCM samples ([1, N] int16 or float32)")
        output = outputs[0]
        if len([d for d in output["shape"] if d != 1]) != 1:
            raise EdgennError(f"--frontend {path}: gives {output['shape']}, not one frame of features per window")
        scale, zero_point = cls._feature_quantization(path, output, classifier_input)
        params = cls(path=str(path), window_samples=int(window[0]), n_features=int(np.prod(output["shape"])),
                     input_dtype=inputs[0]["dtype"], scale=scale, zero_point=zero_point, data=data,
                     runtime=runtime, threads=threads)
        try:  # one window of silence now, so a model that cannot run fails before any audio
            ModelFrontEnd(params).push(np.zeros(params.window_samples, np.float32))
        except EdgennError:
            raise
        except Exception as exc:  # a damaged graph fails in any of numpy's ways
            raise EdgennError(f"--frontend {path}: cannot run ({type(exc).__name__}: {exc}); "
                              "re-download the front-end model") from None
        return params

    @staticmethod
    def _feature_quantization(path, output, target):
        quantization = output["quantization"]
        if output["dtype"].startswith("float"):
            return 0.0, 0
        if quantization["scale"]:
            return float(quantization["scale"]), int(quantization["zero_point"])
        if not target.quantized or target.dtype.name != output["dtype"]:
            wanted = f"{target.dtype.name} quantized" if target.quantized else target.dtype.name
            raise EdgennError(f"--frontend {path}: gives {output['dtype']} features but the model takes {wanted} "
                              "input; use a front-end whose output matches it (e.g. a float one)")
        return target.scale, target.zero_point


class ModelFrontEnd:
    """Feature frames from a front-end model, one per window of params.window_samples, every hop_samples."""

    def __init__(self, params):
        self.params = params
        contents = read_contents(params.data, params.path)
        if uses_signal_ops(contents.op_names):  # TFLM's Signal ops: no TFLite runtime has them
            self._graph = SignalGraph(params.data, params.path)
            self._run, self._reset = self._graph.run, self._graph.reset
        else:
            model = open_model(params.data, runtime=params.runtime, threads=params.threads)
            self._run = lambda frame: model.run(frame, raw=True)[0]
            self._reset = model.reset_state
        self.reset()

    @property
    def n_features(self):
        return self.params.n_features

    def reset(self):
        """Forget buffered samples and the model's state: the next push starts a new stream."""
        self._pending = np.zeros(0, np.float32)
        self._reset()

    def push(self, samples):
        """Frames completed by these new samples ([k, n_features] float32, k may be 0)."""
        p = self.params
        x = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        starts = range(0, len(x) - p.window_samples + 1, p.hop_samples)
        frames = np.zeros((len(starts), p.n_features), np.float32)
        for row, start in enumerate(starts):
            frames[row] = self._features(x[start:start + p.window_samples])
        self._pending = x[len(starts) * p.hop_samples:]
        return frames

    def _features(self, window):
        p = self.params
        if p.input_dtype == "int16":  # samples arrive as float in [-1, 1]
            window = np.clip(np.round(window * 32768.0), -32768, 32767).astype(np.int16)
        raw = np.asarray(self._run(window[None])).reshape(-1)
        return raw if not p.scale else (raw.astype(np.float32) - p.zero_point) * np.float32(p.scale)
