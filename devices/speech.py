"""The speech pipeline: audio blocks -> incremental front-end -> model scores -> smoothed decisions -> events.

    model = load_audio_model("speech_commands.tflite")          # a bundle: everything from its manifest
    model = load_audio_model("kws_ref_model.tflite", frontend="mlcommons_kws", labels="kws_12_labels.txt")
    model = load_audio_model("micro_speech_quantized.tflite", frontend="audio_preprocessor_int8.tflite",
                             labels="micro_speech_labels.txt")      # a front-end given as a model
    listener = Listener(model, mode="streaming")
    for block in blocks: for detection in listener.push(block.samples): ...

Scorers (how audio becomes score vectors, each stamped with the stream sample it ends at):
  * window mode: the window model on the last window of features, every hop; clip-normalised
    front-ends (MLCommons: audio / max) and raw-waveform models (YAMNet) recompute the window from
    its samples, others keep a ring of incrementally computed frames. A step model can run in window
    mode too (replaying the window from zero state each hop: exact, slower).
  * streaming mode: the step model once per frame. A recurrent state fed endless audio drifts away
    from anything seen in training (1 s windows from zero state), so K staggered copies of the state
    run side by side, each reset once per window length, offset by window/K; the scores come from the
    oldest copy, whose context is always between (K-1)/K and 1 window long.

The Detector smooths scores over a short moving average and fires once per word: a label fires when
its smoothed score reaches its threshold (and, for keyword spotting, is the top label), then stays
quiet until its score falls below half the threshold; a refractory period stops one word from firing
twice. Labels starting with "_" (_silence_, _unknown_) never fire.
"""

import collections
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgenn.audio_frontend import FrontEnd, FrontEndParams
from edgenn.bundle import load_labels_file, read_labels, read_manifest
from edgenn.errors import EdgennError
from edgenn.runtime import open_model
from edgenn.streaming import Stream
from edgenn.devices.model_frontend import ModelFrontEnd, ModelFrontEndParams

FRONTEND_PRESETS = {"mlcommons_kws": FrontEndParams.mlcommons_kws}
TASKS = ("keywords", "audio_classify", "phrases")
DEFAULTS = {  # per task (and mode): hop between window runs, smoothing, refractory period (ms), threshold
    # keywords: chosen by training/tune_listen.py on streams of dev speakers over real noise (BENCHMARKS.md)
    "keywords": {"hop_ms": 100, "smoothing_ms": 300, "refractory_ms": 500, "threshold": 0.5,
                 "streaming": {"smoothing_ms": 500, "threshold": 0.55}},
    "audio_classify": {"hop_ms": 500, "smoothing_ms": 0, "refractory_ms": 2000, "threshold": 0.5},
}
# A waveform input holds at least this long a clip at 16 kHz (YAMNet 0.975 s, KWS 1 s): [1, 1960] is
# 49 x 40 features (micro_speech), not 0.12 s of audio.
MIN_WAVEFORM_SECONDS = 0.25
BRIDGE_CHUNKS = 10  # 100 ms: quieter gaps inside one word
RELEASE = 0.5  # a fired label re-arms once its smoothed score falls below RELEASE x threshold


@dataclass
class AudioModel:
    """An opened audio model and everything needed to feed it."""
    name: str
    task: str
    labels: list
    rate: int
    frontend: FrontEndParams = None  # or ModelFrontEndParams; None: the model takes raw samples
    window_samples: int = 0          # raw-waveform models
    window_frames: int = 0           # feature models
    model: object = None             # edgenn.runtime.Model (window model, or step model when streaming)
    streaming: dict = None           # the manifest's streaming spec of a step model
    settings: dict = None            # detection settings from the manifest (decoder of kind "keywords")

    @property
    def window_seconds(self):
        if self.frontend is None:
            return self.window_samples / self.rate
        p = self.frontend
        return ((self.window_frames - 1) * p.hop_samples + p.window_samples) / p.sample_rate


def make_frontend(params):
    """A fresh stateful front-end for a scorer: edgenn's numpy FrontEnd or a front-end model."""
    return ModelFrontEnd(params) if isinstance(params, ModelFrontEndParams) else FrontEnd(params)


def _frontend_option(frontend, frame_input, runtime, threads):
    if isinstance(frontend, (FrontEndParams, ModelFrontEndParams)):
        return frontend
    if frontend in FRONTEND_PRESETS:
        return FRONTEND_PRESETS[frontend]()
    path = Path(frontend)
    if path.suffix == ".tflite":
        if not path.is_file():
            raise EdgennError(f"--frontend {path}: no such file")
        return ModelFrontEndParams.from_model(path, frame_input, runtime, threads)
    if path.suffix == ".json" and path.is_file():
        try:
            return FrontEndParams.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise EdgennError(f"{path}: not valid JSON front-end parameters ({exc})") from None
    raise EdgennError(f"unknown --frontend {frontend!r}; use {', '.join(FRONTEND_PRESETS)}, raw, "
                      "a .json file of front-end parameters or a front-end .tflite model")


def load_audio_model(path, labels=None, frontend=None, task=None, runtime=None, threads=None):
    """An AudioModel from a bundle (manifest) or a third-party model plus options.

    frontend: 'mlcommons_kws', 'raw' (the model takes samples), a .json of FrontEndParams, a front-end
    .tflite model (one window of samples -> one frame), or None (manifest, else raw for a model whose
    input looks like a waveform)."""
    path = Path(path)
    manifest = read_manifest(path) or {}
    model = open_model(path, runtime=runtime, threads=threads)
    label_list = load_labels_file(labels) if labels else manifest.get("labels") or read_labels(path)
    spec = manifest.get("streaming")
    frame_input = model.inputs[0]
    if spec:
        positions = {t.name: i for i, t in enumerate(model.inputs)}
        frame_input = model.inputs[positions.get(spec.get("frame_input"), 0)]
    if frontend is None and manifest.get("audio_frontend"):
        params = FrontEndParams.from_dict(manifest["audio_frontend"])
    elif frontend not in (None, "raw"):
        params = _frontend_option(frontend, frame_input, runtime, threads)
    else:
        params = None
    shape = [d for d in frame_input.shape]
    if params is None:
        waveform = len(shape) == 1 or (len(shape) == 2 and shape[0] == 1)
        if waveform and frontend is None and not manifest.get("sample_rate"):
            # a model that says nothing: 8-bit inputs are quantized features, never PCM
            waveform = frame_input.dtype.itemsize > 1 and shape[-1] >= MIN_WAVEFORM_SECONDS * 16000
        if spec or not waveform:
            raise EdgennError(f"{path}: its input {shape} {frame_input.dtype.name} is features, not a waveform, and "
                              "no audio front-end is given; give --frontend (mlcommons_kws, a .json of front-end "
                              "parameters, or a front-end model such as --frontend audio_preprocessor_int8.tflite "
                              "for TFLite Micro's micro_speech)")
        window_samples, window_frames, rate = int(shape[-1]), 0, 16000
        if frontend is None and manifest.get("sample_rate"):
            rate = int(manifest["sample_rate"])
    else:
        window_samples, window_frames, rate = 0, _window_frames(path, shape, params, spec), params.sample_rate
    task = task or manifest.get("task") or ("audio_classify" if params is None else "keywords")
    scores_shape = model.outputs[_scores_position(model, spec)].shape
    # a phrase model scores every frame: [1, frames, classes]
    n_classes = int(scores_shape[-1] if task == "phrases" else np.prod(scores_shape))
    if not label_list:
        label_list = [f"class_{i}" for i in range(n_classes)]
    if len(label_list) != n_classes:
        raise EdgennError(f"{path}: {len(label_list)} labels for {n_classes} model outputs; check --labels")
    if task not in TASKS:
        raise EdgennError(f"{path}: task {task!r} is not an audio task; edgenn listen runs {', '.join(TASKS)}")
    decoder = manifest.get("decoder") or {}
    if task == "phrases":
        decoder = _phrase_decoder(path, decoder, list(label_list))
    return AudioModel(name=manifest.get("name") or path.stem, task=task, labels=list(label_list), rate=rate,
                      frontend=params, window_samples=window_samples, window_frames=window_frames, model=model,
                      streaming=spec, settings=decoder if decoder.get("kind") in ("keywords", "phrases") else {})


def _phrase_decoder(path, decoder, labels):
    """The manifest's phrase decoder, checked against the labels in use (--labels may replace them)."""
    if decoder.get("kind") != "phrases":
        raise EdgennError(f"{path}: no phrase decoder in its manifest (blank index, vocabulary); convert the CTC "
                          "model with `edgenn convert --task phrases`")
    blank = decoder.get("blank_index")
    if not isinstance(blank, int) or not 0 <= blank < len(labels):
        raise EdgennError(f"{path}: the manifest's CTC blank index {blank!r} is not one of the {len(labels)} labels; "
                          "re-convert it with `edgenn convert --task phrases`")
    filler = list(decoder.get("filler") or [])
    words = list(decoder.get("vocabulary") or [t for i, t in enumerate(labels) if i != blank and t not in filler])
    missing = [t for t in filler + words if t not in labels]
    if missing:
        raise EdgennError(f"{path}: the labels lack {', '.join(missing)}, which the phrase decoder names; give "
                          "--labels in the model's own token order, or none")
    return {**decoder, "filler": filler, "vocabulary": words}


def _window_frames(path, shape, params, spec):
    """Frames per window of a feature model: [1, frames, features(, 1)], or [1, frames x features] flattened."""
    n = params.n_features
    stacked = len(shape) in (3, 4) and shape[0] == 1 and shape[2] == n and (len(shape) == 3 or shape[3] == 1)
    flat = len(shape) == 2 and shape[0] == 1 and shape[1] % n == 0 and not spec
    if not stacked and not flat:
        raise EdgennError(f"{path}: input {shape} does not take [1, frames, {n}(, 1)] or [1, frames x {n}] "
                          "features from the front-end; check --frontend")
    if spec:
        return int(spec["window_frames"])
    return int(shape[1]) if stacked else shape[1] // n


def _scores_position(model, spec):
    if not spec:
        return 0
    return {t.name: i for i, t in enumerate(model.outputs)}.get(spec.get("scores_output"), 0)


# --- scorers: push(samples) -> [(end sample, scores)]
class FrameRing:
    """The last `length` feature frames, zero-filled at the start (as short clips are padded)."""

    def __init__(self, length, width):
        self.buffer = np.zeros((2 * length, width), np.float32)
        self.length, self.end = length, length

    def add(self, frame):
        if self.end == len(self.buffer):  # slide once per `length` frames instead of every frame
            self.buffer[:self.length] = self.buffer[self.length:]
            self.end = self.length
        self.buffer[self.end] = frame
        self.end += 1

    def window(self):
        return self.buffer[self.end - self.length:self.end]


class FeatureWindowScorer:
    """Window model over a ring of incrementally computed frames, every hop_frames frames."""

    def __init__(self, audio, hop_frames):
        self.audio, self.hop = audio, max(1, hop_frames)
        self.frontend = make_frontend(audio.frontend)
        self.ring = FrameRing(audio.window_frames, audio.frontend.n_features)
        self.frames = 0
        # A front-end model's state starts cold (micro_speech: noise estimate 0, as at the start of each
        # training clip), and its first frames after zero-filled ones look like a word's onset: score only
        # full windows, the first one exactly as the model's reference scores a clip.
        self.first = audio.window_frames if isinstance(audio.frontend, ModelFrontEndParams) else 0

    def push(self, samples):
        out = []
        p = self.audio.frontend
        for frame in self.frontend.push(samples):
            self.ring.add(frame)
            self.frames += 1
            if self.frames >= self.first and (self.frames - self.first) % self.hop == 0:
                end = (self.frames - 1) * p.hop_samples + p.window_samples
                out.append((end, self.score(self.ring.window())))
        return out

    def score(self, window):
        return self.audio.model.run(window[None])[0].reshape(-1)


class StepWindowScorer(FeatureWindowScorer):
    """Window mode with a step model: replay the window's frames from zero state every hop."""

    def __init__(self, audio, hop_frames):
        super().__init__(audio, hop_frames)
        self.stream = Stream(audio.model, audio.streaming)

    def score(self, window):
        self.stream.reset()
        for frame in window:
            scores = self.stream.step(frame[None, None])
        return np.asarray(scores).reshape(-1)


class SampleWindowScorer:
    """Window model on the last window of samples, every hop: raw waveforms, clip-normalised features."""

    def __init__(self, audio, hop_samples):
        self.audio, self.hop = audio, max(1, hop_samples)
        p = audio.frontend
        self.length = audio.window_samples if p is None else p.clip_samples or \
            (audio.window_frames - 1) * p.hop_samples + p.window_samples
        self.frontend = FrontEnd(p) if p is not None else None
        self.ring = np.zeros(2 * self.length, np.float32)
        self.end, self.seen, self.next_run = self.length, 0, self.hop

    def push(self, samples):
        out = []
        samples = np.asarray(samples, np.float32)
        while len(samples):
            take = min(len(samples), self.next_run - self.seen, len(self.ring) - self.end)
            if take == 0:  # ring full: keep its last window
                self.ring[:self.length] = self.ring[self.end - self.length:self.end]
                self.end = self.length
                continue
            self.ring[self.end:self.end + take] = samples[:take]
            self.end += take
            self.seen += take
            samples = samples[take:]
            if self.seen == self.next_run:
                self.next_run += self.hop
                window = self.ring[self.end - self.length:self.end]
                x = window if self.frontend is None else self.frontend.features(window)[None]
                out.append((self.seen, self.audio.model.run(x)[0].reshape(-1)))
        return out


class StreamingScorer:
    """The step model once per frame, K staggered states each reset once per window (see module doc)."""

    def __init__(self, audio, copies=4):
        if not audio.streaming:
            raise EdgennError(f"{audio.name} is a window model; streaming mode needs a step model "
                              "(`edgenn convert --streaming`), or use --mode window")
        self.audio, self.copies = audio, max(1, copies)
        self.frontend = make_frontend(audio.frontend)
        self.window = int(audio.streaming.get("window_frames") or audio.window_frames)
        self.streams = [Stream(audio.model, audio.streaming) for _ in range(self.copies)]
        # copy i was "reset" i*window/K frames before the stream began, so the ages stay staggered
        self.ages = [(i * self.window) // self.copies for i in range(self.copies)]
        self.frames = 0

    def push(self, samples):
        out = []
        p = self.audio.frontend
        for frame in self.frontend.push(samples):
            frame = frame[None, None]
            best, scores = -1, None
            for i, stream in enumerate(self.streams):
                if self.ages[i] == self.window:
                    stream.reset()
                    self.ages[i] = 0
                result = stream.step(frame)
                self.ages[i] += 1
                if self.ages[i] > best:
                    best, scores = self.ages[i], result
            end = self.frames * p.hop_samples + p.window_samples
            self.frames += 1
            out.append((end, np.asarray(scores).reshape(-1)))
        return out


def make_scorer(audio, mode, hop_ms, copies=4):
    if mode == "streaming":
        return StreamingScorer(audio, copies)
    if audio.frontend is None or audio.frontend.clip_normalise != "none":
        return SampleWindowScorer(audio, int(round(hop_ms * audio.rate / 1000)))
    hop_frames = int(round(hop_ms / 1000 * audio.rate / audio.frontend.hop_samples))
    return (StepWindowScorer if audio.streaming else FeatureWindowScorer)(audio, hop_frames)


# --- decisions
class Detector:
    """Moving-average smoothing, per-label thresholds, re-arming hysteresis and a refractory period."""

    def __init__(self, labels, thresholds, smoothing, refractory_s, exclusive):
        self.labels = labels
        self.thresholds = np.asarray(thresholds, np.float32)
        self.reportable = np.array([not label.startswith("_") and label != "" for label in labels])
        self.history = collections.deque(maxlen=max(1, smoothing))
        self.armed = np.ones(len(labels), bool)
        self.last = np.full(len(labels), -np.inf)
        self.last_any = -np.inf
        self.refractory, self.exclusive = refractory_s, exclusive

    def update(self, t, scores):
        """[(label index, smoothed score)] that fire at stream time t (seconds)."""
        self.history.append(np.asarray(scores, np.float32))
        smoothed = np.mean(self.history, axis=0)
        self.armed |= smoothed < RELEASE * self.thresholds
        candidates = self.reportable & self.armed & (smoothed >= self.thresholds) & \
            (t - self.last >= self.refractory)
        if self.exclusive:
            top = int(np.argmax(smoothed))
            candidates &= np.arange(len(smoothed)) == top
            candidates &= t - self.last_any >= self.refractory
        fired = [(int(i), float(smoothed[i])) for i in np.flatnonzero(candidates)]
        for i, _ in fired:
            self.armed[i] = False
            self.last[i] = self.last_any = t
        return sorted(fired, key=lambda item: -item[1])


class EnergyTrack:
    """Loudness per 10 ms, to place a detected word in time: where the loud stretch around the
    loudest moment of the detection window begins."""

    def __init__(self, rate, keep_seconds):
        self.chunk = max(1, rate // 100)
        self.rate = rate
        self.values = collections.deque(maxlen=int(keep_seconds * 100) + 1)
        self.pending = np.zeros(0, np.float32)
        self.position = 0  # sample index where the pending samples start

    def push(self, samples):
        x = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        n = len(x) // self.chunk
        if n:
            rms = np.sqrt(np.mean(x[:n * self.chunk].reshape(n, self.chunk) ** 2, axis=1) + 1e-12)
            self.values.extend(rms)
            self.position += n * self.chunk
        self.pending = x[n * self.chunk:]

    def onset(self, end_sample, seconds):
        """Start (in samples) of the loud part in the `seconds` before end_sample."""
        rms = np.asarray(self.values, np.float32)
        starts = self.position - self.chunk * np.arange(len(rms), 0, -1)
        inside = (starts >= end_sample - seconds * self.rate) & (starts < end_sample)
        if not inside.any():
            return max(0, int(end_sample - seconds * self.rate))
        rms, starts = rms[inside], starts[inside]
        floor, peak = np.percentile(rms, 10), rms.max()
        loud = rms >= np.sqrt(floor * peak)  # halfway between noise and word, in dB
        # walk back from the loudest chunk over the word, bridging short pauses (stop consonants)
        first = quiet = int(np.argmax(rms))
        for i in range(first - 1, -1, -1):
            if loud[i]:
                first = quiet = i
            elif quiet - i > BRIDGE_CHUNKS:
                break
        return int(starts[first])


@dataclass
class Detection:
    label: str
    score: float
    start: float     # the word's start in the stream (seconds)
    detected: float  # the stream time of the scores that fired (seconds)
    end_sample: int


class Listener:
    """Runs an AudioModel over pushed samples (at audio.rate); returns Detections as they fire."""

    def __init__(self, audio, mode=None, threshold=None, thresholds=None, hop_ms=None, smoothing_ms=None,
                 refractory_ms=None, copies=4):
        self.mode = mode or ("streaming" if audio.streaming else "window")
        if self.mode not in ("window", "streaming"):
            raise EdgennError(f"unknown mode {self.mode!r}; choose window or streaming")
        defaults = {k: v for k, v in DEFAULTS[audio.task].items() if k not in ("window", "streaming")}
        settings = {**defaults, **DEFAULTS[audio.task].get(self.mode, {}),
                    **{k: v for k, v in (audio.settings or {}).items() if v is not None}}
        for key, value in (("hop_ms", hop_ms), ("smoothing_ms", smoothing_ms), ("refractory_ms", refractory_ms),
                           ("threshold", threshold)):
            if value is not None:
                settings[key] = value
        per_label = {**(settings.get("thresholds") or {}), **(thresholds or {})}
        unknown = sorted(set(per_label) - set(audio.labels))
        if unknown:
            raise EdgennError(f"threshold for unknown label(s) {unknown}; labels: {', '.join(audio.labels)}")
        self.audio = audio
        self.settings = settings
        self.scorer = make_scorer(audio, self.mode, settings["hop_ms"], copies)
        interval = (audio.frontend.hop_samples / audio.rate if self.mode == "streaming" and audio.frontend
                    else settings["hop_ms"] / 1000)
        self.detector = Detector(audio.labels, [per_label.get(label, settings["threshold"]) for label in audio.labels],
                                 int(round(settings["smoothing_ms"] / 1000 / interval)) or 1,
                                 settings["refractory_ms"] / 1000, exclusive=audio.task == "keywords")
        self.energy = EnergyTrack(audio.rate, audio.window_seconds + 1.0)
        self.scores = self.samples = 0
        self.samples_heard = float("inf")  # set by flush(): the padding after it is not audio

    def push(self, samples):
        self.energy.push(samples)
        self.samples += len(samples)
        found = []
        for end, scores in self.scorer.push(samples):
            self.scores += 1
            end = min(end, self.samples_heard)
            t = end / self.audio.rate
            for index, score in self.detector.update(t, scores):
                start = self.energy.onset(end, self.audio.window_seconds) / self.audio.rate
                found.append(Detection(self.audio.labels[index], score, start, t, end))
        return found

    def flush(self):
        """Detections of a word at the very end of a source: run on one window of digital silence past the
        end, as a short clip is padded, so the last word passes through the window and the smoothing.
        Times stay inside the audio that was heard."""
        self.samples_heard = self.samples
        pad = int(round(self.audio.window_seconds * self.audio.rate))
        return self.push(np.zeros(pad, np.float32))
