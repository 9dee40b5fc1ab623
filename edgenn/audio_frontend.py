"""The one audio front-end (numpy only): samples -> log-mel or MFCC frames.

It follows tf.signal step by step (frame, periodic window, rfft, |.| or |.|^2,
linear_to_mel_weight_matrix with the HTK mel scale, log(x + offset),
mfccs_from_log_mel_spectrograms), so models trained on tf.signal features run on
features computed here, and the parameters go into the bundle manifest.

Use `FrontEnd(params).features(clip)` for a whole clip or `push(block)` for a stream:
push returns only the frames completed by the new samples and keeps just the
samples the next frame still needs.
"""

from dataclasses import asdict, dataclass, fields

import numpy as np

from edgenn.errors import EdgennError

WINDOWS = ("hann", "hamming", "none")
SPECTRA = ("magnitude", "power")
CLIP_NORMALISATIONS = ("none", "max", "absmax")


@dataclass(frozen=True)
class FrontEndParams:
    """Every parameter of the front-end; `to_dict()` is what the manifest records.

    clip_normalise: "max" divides a clip by its maximum (MLCommons KWS: audio/max(audio)),
    "absmax" by its largest magnitude; both need the whole clip, so streams refuse them.
    clip_samples: zero-pad or cut a whole clip to this many samples (0 = keep its length).
    n_mfcc: 0 gives log-mel features, n > 0 the first n MFCCs.
    feature_mean / feature_std: applied last, (x - mean) / std.
    """

    sample_rate: int = 16000
    window_samples: int = 400
    hop_samples: int = 320
    n_fft: int = 512
    window: str = "hann"
    spectrum: str = "magnitude"
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 7600.0
    log_offset: float = 1e-6
    n_mfcc: int = 0
    clip_normalise: str = "none"
    clip_samples: int = 0
    feature_mean: float = 0.0
    feature_std: float = 1.0

    def __post_init__(self):
        problems = []
        if self.sample_rate <= 0:
            problems.append("sample_rate must be > 0")
        if not 0 < self.window_samples <= self.n_fft:
            problems.append("window_samples must be in 1..n_fft")
        if self.hop_samples <= 0:
            problems.append("hop_samples must be > 0")
        if self.window not in WINDOWS:
            problems.append(f"window must be one of {WINDOWS}")
        if self.spectrum not in SPECTRA:
            problems.append(f"spectrum must be one of {SPECTRA}")
        if self.n_mels <= 0:
            problems.append("n_mels must be > 0")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append("need 0 <= fmin < fmax <= sample_rate/2")
        if self.log_offset < 0:
            problems.append("log_offset must be >= 0")
        if not 0 <= self.n_mfcc <= self.n_mels:
            problems.append("n_mfcc must be in 0..n_mels")
        if self.clip_normalise not in CLIP_NORMALISATIONS:
            problems.append(f"clip_normalise must be one of {CLIP_NORMALISATIONS}")
        if self.clip_samples < 0:
            problems.append("clip_samples must be >= 0")
        if self.feature_std == 0:
            problems.append("feature_std must not be 0")
        if problems:
            raise EdgennError("invalid audio front-end parameters: " + "; ".join(problems))

    @property
    def n_features(self):
        return self.n_mfcc or self.n_mels

    def frames_for(self, n_samples):
        """Number of frames a clip of n_samples gives (no end padding, like tf.signal.stft)."""
        if self.clip_samples:
            n_samples = self.clip_samples
        return 0 if n_samples < self.window_samples else 1 + (n_samples - self.window_samples) // self.hop_samples

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise EdgennError(f"unknown audio front-end parameter(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**{k: known[k](v) for k, v in data.items()})
        except (TypeError, ValueError) as exc:
            raise EdgennError(f"invalid audio front-end parameters {data}: {exc}") from None

    @classmethod
    def mlcommons_kws(cls):
        """MLPerf Tiny keyword spotting (mlcommons/tiny get_dataset.py): 49 x 10 MFCCs per 1 s clip."""
        return cls(sample_rate=16000, window_samples=480, hop_samples=320, n_fft=512, window="hann",
                   spectrum="magnitude", n_mels=40, fmin=20.0, fmax=4000.0, log_offset=1e-6, n_mfcc=10,
                   clip_normalise="max", clip_samples=16000)


def hertz_to_mel(hz):
    """HTK mel scale, as tf.signal uses."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_weight_matrix(params):
    """[n_fft//2 + 1, n_mels] triangular filters, as tf.signal.linear_to_mel_weight_matrix."""
    n_bins = params.n_fft // 2 + 1
    # tf.signal zeroes the DC bin and spaces the rest of the bins linearly up to Nyquist.
    bin_mel = hertz_to_mel(np.linspace(0.0, params.sample_rate / 2.0, n_bins)[1:])[:, None]
    edges = np.linspace(hertz_to_mel(params.fmin), hertz_to_mel(params.fmax), params.n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, params.n_mels)), weights])


def dct_matrix(n_mels, n_mfcc):
    """[n_mels, n_mfcc]: tf.signal.mfccs_from_log_mel_spectrograms = DCT-II * rsqrt(2 * n_mels)."""
    n = np.arange(n_mels)[:, None]
    k = np.arange(n_mfcc)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2.0 * n_mels)) / np.sqrt(2.0 * n_mels)


def window_function(name, length):
    """Periodic windows, as tf.signal.hann_window / hamming_window (periodic=True)."""
    if name == "none":
        return np.ones(length)
    a = 0.5 if name == "hann" else 0.54
    return a - (1.0 - a) * np.cos(2.0 * np.pi * np.arange(length) / length)


class FrontEnd:
    """Computes features for whole clips (`features`) or streams (`push`, `reset`)."""

    def __init__(self, params=None):
        self.params = params or FrontEndParams()
        p = self.params
        self._window = window_function(p.window, p.window_samples)
        self._mel = mel_weight_matrix(p)
        self._dct = dct_matrix(p.n_mels, p.n_mfcc) if p.n_mfcc else None
        self.reset()

    @property
    def n_features(self):
        return self.params.n_features

    def reset(self):
        """Forget buffered samples: the next push starts a new stream."""
        self._pending = np.zeros(0, dtype=np.float64)

    def features(self, samples):
        """[frames, n_features] float32 for a whole clip (mono samples at params.sample_rate)."""
        p = self.params
        x = _mono(samples)
        if p.clip_samples:
            x = np.pad(x[:p.clip_samples], (0, max(0, p.clip_samples - len(x))))
        if p.clip_normalise != "none":
            peak = np.max(x) if p.clip_normalise == "max" else np.max(np.abs(x))
            if peak > 0:  # all-silent clips stay zero instead of becoming NaN
                x = x / peak
        return self._frames_to_features(_frame(x, p.window_samples, p.hop_samples))

    def push(self, samples):
        """Frames completed by these new samples ([k, n_features], k may be 0); past frames are not recomputed."""
        p = self.params
        if p.clip_normalise != "none":
            raise EdgennError(f"clip_normalise={p.clip_normalise!r} needs the whole clip; "
                              "use FrontEnd.features() on each window instead of push()")
        x = np.concatenate([self._pending, _mono(samples)])
        frames = _frame(x, p.window_samples, p.hop_samples)
        self._pending = x[len(frames) * p.hop_samples:]
        return self._frames_to_features(frames)

    def _frames_to_features(self, frames):
        p = self.params
        spectrum = np.abs(np.fft.rfft(frames * self._window, n=p.n_fft, axis=-1))
        if p.spectrum == "power":
            spectrum = spectrum ** 2
        out = np.log(spectrum @ self._mel + p.log_offset)
        if self._dct is not None:
            out = out @ self._dct
        if p.feature_mean or p.feature_std != 1.0:
            out = (out - p.feature_mean) / p.feature_std
        return out.astype(np.float32)


def _mono(samples):
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise EdgennError(f"audio front-end needs mono 1-D samples, got shape {x.shape}")
    return x


def _frame(x, length, hop):
    """[frames, length] views of x, complete frames only (tf.signal.frame without pad_end)."""
    if len(x) < length:
        return np.zeros((0, length))
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop]
