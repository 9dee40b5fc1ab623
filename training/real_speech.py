"""Real speech for the demo keyword model: Speech Commands clips split by speaker, real-room augmentation,
keyword streams of held-out speakers, and the MLCommons reference model as a teacher (numpy + LiteRT only).

Data: EDGENN_FIXTURES/speech_real (Speech Commands dataset by Pete Warden / Google, CC BY 4.0).
Splits are by speaker, fixed by a hash of the speaker id, so they never depend on file order:
  train  - training only;
  dev    - choosing the listen defaults and watching training (never reported);
  test   - the figures we report (clip accuracy, the keyword stream, the demo's sample WAV).
`_silence_` clips have no speaker; they split by their file name the same way. The dataset's
`_background_noise_` recordings split in time: the first 70 % of each file is for training, the rest
for dev/test streams, so no stream is mixed with noise the model trained on.
"""

import hashlib
import os
from pathlib import Path

import numpy as np

from edgenn.audio_frontend import FrontEnd, FrontEndParams
from edgenn.errors import EdgennError
from edgenn.wav import read_wav, resample
from training.speech_data import KEYWORDS, LABELS

RATE = 16000
CREDIT = "Speech Commands dataset by Pete Warden / Google, CC BY 4.0 (https://arxiv.org/abs/1804.03209)"
SPLITS = {"train": (0, 72), "dev": (72, 84), "test": (84, 100)}  # hash buckets out of 100
NOISE_TRAIN_SHARE = 0.7
# The held-out fixture clips (audio/speech_commands: speakers outside speech_real), one word a second.
FIXTURE_WORDS = {"yes.wav": ["yes"], "down.wav": ["down"], "right_left_up.wav": ["right", "left", "up"],
                 "yes_no_go_stop.wav": ["yes", "no", "go", "stop"]}
TEACHER_LABELS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_")


def root(fixtures=None):
    folder = Path(fixtures or os.environ.get("EDGENN_FIXTURES") or Path(__file__).resolve().parents[2] / "shared" /
                  "fixtures") / "speech_real"
    if not (folder / "yes").is_dir():
        raise EdgennError(f"{folder}: real Speech Commands clips not found; set EDGENN_FIXTURES to the fixtures folder")
    return folder


def speaker_of(path):
    """Speaker id from `<speaker>_nohash_<n>.wav` or `<word>[_v001]_<speaker>_nohash_<n>.wav`; the file name for silence."""
    stem = Path(path).stem
    return stem.split("_nohash_")[0].split("_")[-1] if "_nohash_" in stem else stem


def split_of(speaker):
    bucket = int(hashlib.sha256(speaker.encode()).hexdigest()[:8], 16) % 100
    return next(name for name, (low, high) in SPLITS.items() if low <= bucket < high)


def clip_list(split, fixtures=None):
    """[(path, label index into LABELS, speaker)] of one split, sorted by path."""
    folder = root(fixtures)
    rows = []
    for index, label in enumerate(LABELS):
        for path in sorted((folder / label).glob("*.wav")):
            speaker = speaker_of(path)
            if split_of(speaker) == split:
                rows.append((path, index, speaker))
    return rows


def load_clips(split, fixtures=None):
    """(clips: list of float32 arrays, labels: int array, speakers: list) of one split."""
    rows = clip_list(split, fixtures)
    return [read_wav(p, rate=RATE)[0] for p, _, _ in rows], np.array([i for _, i, _ in rows]), [s for _, _, s in rows]


def fit_window(clip, n=RATE):
    """Zero-pad (centred) or centre-cut a clip to exactly n samples."""
    if len(clip) >= n:
        start = (len(clip) - n) // 2
        return clip[start:start + n]
    pad = n - len(clip)
    return np.pad(clip, (pad // 2, pad - pad // 2))


def background_noise(part, fixtures=None):
    """The dataset's noise recordings: the first 70 % of each ("train") or the rest ("held_out")."""
    out = []
    for path in sorted((root(fixtures) / "_background_noise_").glob("*.wav")):
        samples = read_wav(path, rate=RATE)[0]
        cut = int(len(samples) * NOISE_TRAIN_SHARE)
        out.append(samples[:cut] if part == "train" else samples[cut:])
    return out


def crop(rng, recordings, n):
    """n samples from a random place of a random recording, at unit RMS."""
    clip = recordings[rng.integers(len(recordings))]
    start = rng.integers(len(clip) - n + 1)
    x = clip[start:start + n].astype(np.float64)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-9)


def loud_rms(x, chunk=160):
    """RMS of the loudest quarter of 10 ms chunks: the level of the word, not of the pauses around it."""
    n = len(x) // chunk
    if not n:
        return 0.0
    energy = np.sort(np.mean(x[:n * chunk].reshape(n, chunk) ** 2, axis=1))
    return float(np.sqrt(np.mean(energy[-max(1, n // 4):])))


def augment(rng, clip, noises, silence, neighbours=()):
    """One 1 s training window from a clip: speed/pitch, time shift, gain, real noise at a random SNR.

    silence: the clip is background (a `_silence_` clip or an empty synthetic one), so no SNR applies.
    As in a keyword stream, the spoken part alone may sit anywhere in the window, and a piece of one of
    `neighbours` (other clips) may fill an edge: the end of the last word or the start of the next."""
    x = np.asarray(clip, np.float64)
    if silence:
        x = fit_window(x) if len(x) else np.zeros(RATE)
        if rng.random() < 0.7:  # room noise at any level, down to digital silence
            x = x + crop(rng, noises, RATE) * (10 ** rng.uniform(-4.5, -0.8) if rng.random() < 0.95 else 0.0)
        level = max(loud_rms(x), 1e-3) * 10 ** (rng.uniform(5, 25) / 20)  # a neighbour's level over the noise
    else:
        if rng.random() < 0.8:  # speed and pitch together: resampling by 0.85-1.15
            factor = rng.uniform(0.85, 1.15)
            x = resample(x, RATE, int(round(RATE / factor))).astype(np.float64)
        if rng.random() < 0.3:
            begin, end = word_span(x)
            word = x[begin:end][:RATE]
            x = np.zeros(RATE)
            offset = int(rng.integers(0, RATE - len(word) + 1))
            x[offset:offset + len(word)] = word
        else:
            x = fit_window(x)
            shift = int(rng.integers(-1600, 1601))  # up to 100 ms either way
            x = np.roll(x, shift)
            if shift > 0:
                x[:shift] = 0.0
            elif shift < 0:
                x[shift:] = 0.0
        level = loud_rms(x)
    if len(neighbours) and rng.random() < 0.5:
        other = np.asarray(neighbours[rng.integers(len(neighbours))], np.float64)
        begin, end = word_span(other)
        piece = other[begin:end]
        n = min(len(piece), int(rng.uniform(0.05, 0.6) * RATE))  # up to a whole word: pauses can be short
        gain = level * 10 ** (rng.uniform(-10, 3) / 20) / (loud_rms(piece) + 1e-9)
        if rng.random() < 0.5:
            x[:n] += piece[len(piece) - n:] * gain
        else:
            x[RATE - n:] += piece[:n] * gain
    if not silence and rng.random() < 0.85:
        x = x + crop(rng, noises, RATE) * level * 10 ** (-rng.uniform(0, 25) / 20)
    peak = np.max(np.abs(x))
    if peak > 0:
        x = x * 10 ** (rng.uniform(-32, -1) / 20) / peak
    return np.clip(x, -1, 1).astype(np.float32)


def spec_augment(rng, feats, time_masks=2, max_time=8, freq_masks=2, max_freq=6):
    """SpecAugment-style masking in place on [N, frames, bands] features (normalised, so 0 is the mean)."""
    n, frames, bands = feats.shape
    for _ in range(time_masks):
        width = rng.integers(0, max_time + 1, n)
        start = rng.integers(0, frames, n)
        mask = (np.arange(frames)[None] >= start[:, None]) & (np.arange(frames)[None] < (start + width)[:, None])
        feats[mask] = 0.0
    for _ in range(freq_masks):
        width = rng.integers(0, max_freq + 1, n)
        start = rng.integers(0, bands, n)
        mask = (np.arange(bands)[None] >= start[:, None]) & (np.arange(bands)[None] < (start + width)[:, None])
        feats.transpose(0, 2, 1)[mask] = 0.0
    return feats


def word_span(clip, chunk=160, below_peak_db=20.0, above_floor_db=6.0, bridge=15, margin=0.08):
    """(start, end) samples of the spoken part of a clip, `margin` seconds either side.

    Loud 10 ms chunks are within `below_peak_db` of the loudest and `above_floor_db` over the clip's own
    room noise (its 10th percentile); the word is the run of them around the loudest chunk, bridging quiet
    gaps of up to `bridge` chunks (stop consonants), so a click or breath apart from the word is left out."""
    n = len(clip) // chunk
    if n < 2:
        return 0, len(clip)
    rms = np.sqrt(np.mean(np.asarray(clip[:n * chunk], np.float64).reshape(n, chunk) ** 2, axis=1) + 1e-12)
    level = max(rms.max() * 10 ** (-below_peak_db / 20), np.percentile(rms, 10) * 10 ** (above_floor_db / 20))
    loud = rms >= min(level, rms.max())  # a clip without quiet parts is all word
    peak = int(np.argmax(rms))
    first = last = peak
    for i in range(peak - 1, -1, -1):
        if loud[i]:
            first = i
        elif first - i > bridge:
            break
    for i in range(peak + 1, n):
        if loud[i]:
            last = i
        elif i - last > bridge:
            break
    pad = int(margin * RATE)
    return max(0, first * chunk - pad), min(len(clip), (last + 1) * chunk + pad)


def make_keyword_stream(split, seconds=150.0, seed=0, snr_db=(10, 25), unknown_share=0.2, fixtures=None):
    """(samples float32, RATE, truth) — real speakers of `split` saying keywords and other words over the
    held-out part of the real background noise, with 0.6-2.0 s pauses.

    The noise changes recording and level (-55..-40 dBFS) every 4 s: a room with a tap running or dishes
    being done. Each word is its clip's spoken part, faded in and out, `snr_db` above the noise where it is
    spoken (its loudest quarter of 10 ms chunks against the noise's RMS over the same samples): a speaker
    about a metre away. truth: [(onset seconds, keyword)] for keywords only; an onset is where the spoken
    part starts."""
    rng = np.random.default_rng([seed, 12])
    rows = clip_list(split, fixtures)
    words = {label: [p for p, i, _ in rows if LABELS[i] == label] for label in KEYWORDS + ("_unknown_",)}
    noises = background_noise("held_out", fixtures)
    n = int(seconds * RATE)
    noise = np.zeros(n)
    for start in range(0, n, 4 * RATE):
        piece = min(4 * RATE, n - start)
        noise[start:start + piece] = crop(rng, noises, piece) * 10 ** (rng.uniform(-55, -40) / 20)
    samples = noise.copy()
    truth = []
    t = rng.uniform(0.5, 1.2)
    while True:
        label = "_unknown_" if rng.random() < unknown_share else str(rng.choice(KEYWORDS))
        pool = words[label]
        clip = read_wav(pool[rng.integers(len(pool))], rate=RATE)[0]
        begin, end = word_span(clip)
        word = np.asarray(clip[begin:end], np.float64)
        fade = min(160, len(word) // 4)
        word[:fade] *= np.linspace(0, 1, fade)
        word[len(word) - fade:] *= np.linspace(1, 0, fade)
        start = int(t * RATE)
        if start + len(word) >= n - RATE // 2:
            break
        noise_rms = np.sqrt(np.mean(noise[start:start + len(word)] ** 2))
        samples[start:start + len(word)] += word * noise_rms * 10 ** (rng.uniform(*snr_db) / 20) / (loud_rms(word) + 1e-9)
        if label != "_unknown_":
            truth.append((round((start + min(begin, int(0.08 * RATE))) / RATE, 3), label))
        t += len(word) / RATE + rng.uniform(0.6, 2.0)
    return np.clip(samples, -1, 1).astype(np.float32), RATE, truth


class Teacher:
    """The MLCommons Tiny reference DS-CNN (trained on ~85 k real clips) as soft targets in LABELS order."""

    def __init__(self, fixtures=None):
        from ai_edge_litert.interpreter import Interpreter

        path = root(fixtures).parent / "models" / "mlcommons_tiny" / "kws_ref_model.tflite"
        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.frontend = FrontEnd(FrontEndParams.mlcommons_kws())
        self.order = [TEACHER_LABELS.index(label) for label in LABELS]
        self.path = path

    def probabilities(self, clip):
        scale, zero = self.input["quantization"]
        q = np.clip(np.round(self.frontend.features(clip) / scale + zero), -128, 127).astype(np.int8)
        self.interpreter.set_tensor(self.input["index"], q.reshape(self.input["shape"]))
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.output["index"]).reshape(-1).astype(np.float32)
        out_scale, out_zero = self.output["quantization"]
        probs = (raw - out_zero) * out_scale if out_scale else raw
        probs = np.maximum(probs[self.order], 0.0)
        return probs / max(float(probs.sum()), 1e-6)


def write_wav_folder(folder, split, per_label=None, seed=0, augmented=False, fixtures=None):
    """Clips of one split as FOLDER/LABEL/NNNN.wav (the layout `edgenn convert --calibration/--eval` reads).

    per_label: at most this many clips of each label (drawn with `seed`); augmented: each clip once through
    `augment` with the training noise (calibration should see the rooms the device will hear)."""
    from edgenn.wav import write_wav

    folder = Path(folder)
    done = folder / ".complete"
    if done.exists():
        return folder
    rows = clip_list(split, fixtures)
    rng = np.random.default_rng([seed, 3])
    noises = background_noise("train", fixtures) if augmented else None
    for index, label in enumerate(LABELS):
        paths = [p for p, i, _ in rows if i == index]
        if per_label and len(paths) > per_label:
            paths = [paths[i] for i in sorted(rng.choice(len(paths), per_label, replace=False))]
        (folder / label).mkdir(parents=True, exist_ok=True)
        for n, path in enumerate(paths):
            clip = read_wav(path, rate=RATE)[0]
            if augmented:
                clip = augment(rng, clip, noises, silence=index == 0)
            write_wav(folder / label / f"{n:04d}.wav", clip, RATE)
    done.touch()
    return folder
