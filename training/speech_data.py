"""Synthetic speech-command data from espeak-ng (numpy + espeak-ng only, never tensorflow).

Keywords and "_unknown_" words are spoken by espeak-ng voices (English accent + voice variant)
at random speeds and pitches, then trimmed, time-shifted inside a 1 s window, scaled and mixed
with synthetic noise. "_silence_" windows are noise alone. Everything is 16 kHz and follows from
a seed.

Voices held out of training (used for evaluation and for `make_keyword_stream`): every voice of
the accent HELD_OUT_ACCENT, and every accent spoken with one of HELD_OUT_VARIANTS.
"""

import io
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edgenn.errors import EdgennError
from edgenn.wav import read_wav

RATE = 16000
WINDOW = RATE  # 1 s windows
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
LABELS = ("_silence_", "_unknown_") + KEYWORDS
# Near misses help real use, but no homophones of keywords ("know", "write").
UNKNOWN_WORDS = (
    "bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine", "one",
    "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "backward", "forward", "follow",
    "learn", "visual", "yet", "yellow", "note", "cup", "town", "dawn", "lift", "light", "bright", "own", "of", "often", "top", "shop", "so", "low", "hello", "water",
)
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
VARIANTS = (
    "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "antonio", "aunty", "belinda", "benjamin",
    "boris", "caleb", "david", "Denis", "Diogo", "ed", "edward", "edward2", "Gene", "Gene2",
    "gustave", "announcer", "Henrique", "Hugo", "iven", "iven2", "iven3", "iven4", "Jacky", "john",
    "kaukovalta", "Lee", "linda", "marcelo", "Marco", "Mario", "max", "Michael", "michel", "miguel",
    "Mike", "Mr", "Nguyen", "pablo", "paul", "pedro", "quincy", "rob", "robert", "steph", "steph2",
    "steph3", "Storm", "Tweaky", "zac", "anika", "AnxiousAndy", "f1", "f2", "f3", "f4", "f5",
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "klatt", "klatt2", "klatt3", "klatt4", "klatt5",
    "klatt6", "norbert", "sandro", "shelby", "travis", "victor", "grandpa", "grandma", "croak",
    "whisper", "whisperf",
)
HELD_OUT_ACCENT = "en-gb-x-gbcwmd"  # West Midlands
HELD_OUT_VARIANTS = ("f3", "m4", "klatt3", "Annie", "benjamin", "edward", "linda", "max", "quincy",
                     "steph3", "travis", "zac")
SPEEDS = (115, 215)  # words per minute, espeak-ng -s
PITCHES = (15, 85)   # espeak-ng -p


def voices(held_out):
    """The espeak-ng voice names ("accent+variant") of the training or the held-out set."""
    return [f"{accent}+{variant}" for accent in ACCENTS for variant in VARIANTS
            if (accent == HELD_OUT_ACCENT or variant in HELD_OUT_VARIANTS) == held_out]


def synthesize(word, voice, speed=150, pitch=50):
    """The word spoken by espeak-ng, resampled to 16 kHz, leading and trailing silence trimmed."""
    try:
        result = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                                capture_output=True, check=True, timeout=30)
    except FileNotFoundError:
        raise EdgennError("espeak-ng is not installed: apt-get install espeak-ng") from None
    except subprocess.CalledProcessError as exc:
        raise EdgennError(f"espeak-ng failed for voice {voice!r}: {exc.stderr.decode().strip()}") from None
    return _trimmed(read_wav(io.BytesIO(result.stdout), rate=RATE)[0])


def _trimmed(samples):
    """Samples without leading and trailing silence."""
    loud = np.flatnonzero(np.abs(samples) > 1e-3)
    return samples[loud[0]:loud[-1] + 1] if len(loud) else samples[:0]


FLITE_VOICES = ("kal16", "awb", "rms", "slt")


def synthesize_flite(word, voice, stretch=1.0, pitch=110):
    """The word spoken by flite at 16 kHz (duration stretch, mean pitch in Hz), silence trimmed."""
    try:
        result = subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.2f}",
                                 "--setf", f"int_f0_target_mean={pitch}", "-t", word, "-o", "/dev/stdout"],
                                capture_output=True, check=True, timeout=30)
    except FileNotFoundError:
        raise EdgennError("flite is not installed: apt-get install flite") from None
    return _trimmed(read_wav(io.BytesIO(result.stdout), rate=RATE)[0])


def make_flite_utterances(per_keyword, seed, unknown_share=0.15, workers=2):
    """(clean utterances, labels into LABELS) spoken by flite's voices at random speeds and pitches."""
    rng = np.random.default_rng([seed, 5])
    n_unknown = int(round(per_keyword * len(KEYWORDS) * unknown_share / (1 - unknown_share)))
    words = [w for w in KEYWORDS for _ in range(per_keyword)] + list(rng.choice(UNKNOWN_WORDS, n_unknown))
    jobs = [(w, FLITE_VOICES[rng.integers(len(FLITE_VOICES))], float(rng.uniform(0.8, 1.3)),
             int(rng.integers(80, 220))) for w in words]
    with ThreadPoolExecutor(workers) as executor:
        utterances = list(executor.map(lambda job: synthesize_flite(*job), jobs))
    labels = [LABELS.index(w) if w in KEYWORDS else 1 for w in words]
    return [u.astype(np.float32) for u in utterances], np.asarray(labels)


def noise(rng, n):
    """n samples of unit-RMS background noise of a random kind."""
    kind = rng.integers(5)
    if kind == 4:  # mains hum with harmonics plus a little hiss
        t = np.arange(n) / RATE
        f0 = rng.choice([50.0, 60.0])
        x = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) for h in range(1, 6))
        x = x + 0.1 * rng.standard_normal(n)
    else:  # white, pink, brown or band-limited: shape white noise by f^-slope
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / RATE)
        slope = (0.0, 0.5, 1.0, rng.uniform(0, 1.5))[kind]
        shape = 1.0 / np.maximum(f, 20.0) ** slope
        if kind == 3:
            shape *= f < rng.uniform(1000, 8000)
        x = np.fft.irfft(spectrum * shape, n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def place(rng, speech, n=WINDOW):
    """The utterance at a random offset inside n samples (cut if longer); returns (window, offset)."""
    speech = speech[:n]
    offset = int(rng.integers(0, n - len(speech) + 1))
    window = np.zeros(n)
    window[offset:offset + len(speech)] = speech
    return window, offset


def noise_bank(rng, count=64, seconds=4):
    """A noise(rng, n) stand-in that crops `count` pre-made clips: re-augmenting every epoch stays cheap."""
    clips = [noise(rng, seconds * RATE) for _ in range(count)]

    def crop(rng, n):
        clip = clips[rng.integers(count)]
        start = rng.integers(len(clip) - n + 1)
        return clip[start:start + n] * rng.choice([-1.0, 1.0])
    return crop


def augment(rng, speech, noise_source=noise):
    """One 1 s window: time shift, gain (-30..0 dB), noise at 3..40 dB SNR (or none).

    An empty utterance stands for "_silence_": noise alone, from digital silence to loud noise.
    """
    if not len(speech):
        level = 10 ** rng.uniform(-5, -0.7) if rng.random() < 0.95 else 0.0
        return np.clip(noise_source(rng, WINDOW) * level, -1, 1)
    window, offset = place(rng, speech)
    window *= 10 ** (rng.uniform(-30, 0) / 20) / (np.max(np.abs(window)) + 1e-12)
    if rng.random() < 0.9:
        speech_rms = np.sqrt(np.mean(window[offset:offset + len(speech)] ** 2))
        window += noise_source(rng, WINDOW) * speech_rms * 10 ** (-rng.uniform(3, 40) / 20)
    return np.clip(window, -1, 1)


def make_utterances(per_keyword, held_out, seed, unknown_share=0.15, silence_share=0.1, workers=2):
    """(clean utterances, labels into LABELS) from the training or held-out voices; "_silence_" ones are empty."""
    rng = np.random.default_rng([seed, int(held_out)])
    pool = voices(held_out)
    n_unknown = int(round(per_keyword * len(KEYWORDS) * unknown_share / (1 - unknown_share - silence_share)))
    n_silence = int(round(per_keyword * len(KEYWORDS) * silence_share / (1 - unknown_share - silence_share)))
    words = [w for w in KEYWORDS for _ in range(per_keyword)] + list(rng.choice(UNKNOWN_WORDS, n_unknown))
    jobs = [(w, pool[rng.integers(len(pool))], int(rng.integers(*SPEEDS)), int(rng.integers(*PITCHES)))
            for w in words]
    with ThreadPoolExecutor(workers) as executor:  # espeak-ng runs in child processes
        utterances = list(executor.map(lambda job: synthesize(*job), jobs))
    utterances += [np.zeros(0)] * n_silence
    labels = [LABELS.index(w) if w in KEYWORDS else 1 for w in words] + [0] * n_silence
    order = rng.permutation(len(utterances))
    return [utterances[i].astype(np.float32) for i in order], np.asarray(labels)[order]


def make_dataset(per_keyword, held_out, seed, **options):
    """(windows [N, 16000] float32, labels [N]): make_utterances, each augmented once."""
    utterances, labels = make_utterances(per_keyword, held_out, seed, **options)
    rng = np.random.default_rng([seed, int(held_out), 1])
    return np.asarray([augment(rng, u) for u in utterances], dtype=np.float32), labels


def make_keyword_stream(seconds=60.0, seed=0):
    """(samples float32, 16000, truth): held-out-voice words over changing background noise.

    Each word is followed by a 1.0-2.2 s pause; about one word in six is an unknown word (a distractor that is
    not in the truth). truth is a list of (onset_seconds, keyword), onset = first loud sample.
    """
    rng = np.random.default_rng([seed, 7])
    n = int(seconds * RATE)
    samples = np.zeros(n)
    for start in range(0, n, 4 * RATE):  # the noise changes kind and level every 4 s
        piece = min(4 * RATE, n - start)
        samples[start:start + piece] = noise(rng, piece) * 10 ** rng.uniform(-3.5, -2)
    pool = voices(held_out=True)
    truth = []
    t = rng.uniform(0.5, 1.5)
    while t + 1.0 < seconds:
        unknown = rng.random() < 1 / 6
        word = str(rng.choice(UNKNOWN_WORDS if unknown else KEYWORDS))
        speech = synthesize(word, pool[rng.integers(len(pool))], int(rng.integers(130, 200)),
                            int(rng.integers(*PITCHES)))[:RATE]
        start = int(t * RATE)
        samples[start:start + len(speech)] += speech * 10 ** (rng.uniform(-12, 0) / 20) / np.max(np.abs(speech))
        if not unknown:
            truth.append((round(start / RATE, 3), word))
        t += len(speech) / RATE + rng.uniform(1.0, 2.2)
    return np.clip(samples, -1, 1).astype(np.float32), RATE, truth


def write_wav_folder(root, per_keyword, held_out, seed):
    """make_dataset as ROOT/LABEL/NNNN.wav (the layout `edgenn convert --calibration/--eval` reads).

    Kept when ROOT already holds it, so tests and benchmarks regenerate nothing (cache it under /tmp)."""
    from pathlib import Path

    from edgenn.wav import write_wav

    root = Path(root)
    done = root / ".complete"
    if done.exists():
        return root
    clips, labels = make_dataset(per_keyword, held_out=held_out, seed=seed)
    for i, (clip, label) in enumerate(zip(clips, labels)):
        (root / LABELS[label]).mkdir(parents=True, exist_ok=True)
        write_wav(root / LABELS[label] / f"{i:04d}.wav", clip, RATE)
    done.touch()
    return root
