"""Spoken phrases of 1-4 command words from real speakers, for the CTC phrase model (numpy only).

Every phrase is ONE speaker of one split (training/real_speech.py SPLITS: by speaker, the keyword model's
split) saying command words from their own Speech Commands clips (CC BY 4.0), each cut to its spoken
part, joined with 0.05-0.4 s gaps between the spoken parts. Training phrases get the keyword recipe's
augmentation (speed/pitch, gain, the real background noise at 0-25 dB SNR); streams for evaluation put
phrases of held-out speakers over the held-out part of the noise, with pauses between phrases.
"""

import numpy as np

from edgenn.wav import read_wav, resample
from training import real_speech
from training.real_speech import RATE, crop, loud_rms, word_span
from training.speech_data import KEYWORDS

BLANK = "_blank_"
FILLER = "_unknown_"  # any other word: a token of its own, dropped from the text
VOCABULARY = (BLANK, *KEYWORDS, FILLER)
GAP_SECONDS = (0.05, 0.4)  # between the spoken parts of two words of one phrase
MARGIN = 0.08  # word_span's margin either side of the loud part


def speaker_words(split, fixtures=None):
    """{speaker: [(word, clip float32)]} of one split: keywords and other words (FILLER), no silence."""
    by_speaker = {}
    for path, index, speaker in real_speech.clip_list(split, fixtures):
        label = real_speech.LABELS[index]
        if label == "_silence_":
            continue
        by_speaker.setdefault(speaker, []).append((label if label in KEYWORDS else FILLER,
                                                   read_wav(path, rate=RATE)[0]))
    # a phrase needs at least one command word of its speaker
    return {s: words for s, words in by_speaker.items() if any(w != FILLER for w, _ in words)}


def spoken_part(clip, rng=None):
    """The word without the clip's silence (faded in/out), sped up or slowed by 0.85-1.15 when rng is given."""
    begin, end = word_span(clip, margin=MARGIN)
    word = np.asarray(clip[begin:end], np.float64)
    if rng is not None and rng.random() < 0.8:
        word = resample(word, RATE, int(round(RATE / rng.uniform(0.85, 1.15)))).astype(np.float64)
    fade = min(160, len(word) // 4)
    word[:fade] *= np.linspace(0, 1, fade)
    word[len(word) - fade:] *= np.linspace(1, 0, fade)
    return word


def choose_words(rng, words, count, filler_share=0.0, others_only=False):
    """count (word, clip) pairs of one speaker: command words, and with filler_share another word among them;
    others_only: other words only (the speaker must have some)."""
    commands = [w for w in words if w[0] != FILLER]
    others = [w for w in words if w[0] == FILLER]
    if others_only:
        return [others[rng.integers(len(others))] for _ in range(count)]
    chosen = [commands[rng.integers(len(commands))] for _ in range(count)]
    if others and rng.random() < filler_share:
        chosen.insert(int(rng.integers(len(chosen) + 1)), others[rng.integers(len(others))])
    return chosen


def training_phrase(rng, words, noises, seconds, max_words=4, others_only_share=0.0):
    """(samples [seconds * RATE] float32, tokens: word indices into VOCABULARY) of one augmented phrase;
    others_only_share of them are 1-2 other words alone (speech that is no command: no word to hear)."""
    n = int(seconds * RATE)
    if others_only_share and rng.random() < others_only_share and any(w == FILLER for w, _ in words):
        chosen = choose_words(rng, words, int(rng.integers(1, 3)), others_only=True)
    else:
        share = np.array([0.25, 0.3, 0.25, 0.2])[:max_words]
        count = int(rng.choice(np.arange(1, max_words + 1), p=share / share.sum()))
        chosen = choose_words(rng, words, count, filler_share=0.15)
    pieces = [spoken_part(clip, rng) * 10 ** (rng.uniform(-4, 4) / 20) / (loud_rms(clip) + 1e-9)
              for _, clip in chosen]
    gaps = rng.uniform(*GAP_SECONDS, len(pieces)) - 2 * MARGIN  # gaps are between the loud parts
    while len(pieces) > 1 and sum(len(p) for p in pieces) + int(sum(gaps[1:]) * RATE) > n - RATE // 5:
        pieces.pop(), chosen.pop()  # too long for the window: fewer words
    total = sum(len(p) for p in pieces) + int(sum(gaps[1:len(pieces)]) * RATE)
    x = np.zeros(n)
    t = int(rng.integers(0, max(1, n - total)))
    for i, piece in enumerate(pieces):
        if i:
            t = max(0, t + int(gaps[i] * RATE))
        piece = piece[:n - t]
        x[t:t + len(piece)] += piece
        t += len(piece)
    level = loud_rms(x)
    if rng.random() < 0.9:
        x = x + crop(rng, noises, n) * level * 10 ** (-rng.uniform(0, 25) / 20)
    peak = np.max(np.abs(x))
    x = x * 10 ** (rng.uniform(-32, -1) / 20) / max(peak, 1e-9)
    return np.clip(x, -1, 1).astype(np.float32), [VOCABULARY.index(w) for w, _ in chosen]


def make_phrase_stream(split, phrases=48, words=(1, 3), snr_db=(10, 25), pause=(1.5, 2.5), seed=0,
                       fixtures=None, others_only=False):
    """(samples float32, RATE, truth) — `phrases` phrases of held-out speakers over held-out room noise.

    Each phrase is one speaker saying 1-3 command words (others_only: 1-3 other words, which no listener
    should hear as commands; their truth has words all FILLER) with gaps as in training; the room noise changes
    recording and level (-55..-40 dBFS) every 4 s as in real_speech.make_keyword_stream, but over a 1 s
    crossfade (a tap turned on, not a switch: a 15 dB step in 10 ms reads as speech to any pause detector),
    and the words are `snr_db` above it. truth: [{"text", "words", "start", "end"}] with start/end the first word's onset and
    the last word's end (seconds; the loud part, without word_span's margin)."""
    rng = np.random.default_rng([seed, 14])
    speakers = speaker_words(split, fixtures)
    names = sorted(s for s, said in speakers.items() if not others_only or any(w == FILLER for w, _ in said))
    noises = real_speech.background_noise("held_out", fixtures)
    planned = []
    for _ in range(phrases):
        chosen = choose_words(rng, speakers[names[rng.integers(len(names))]], int(rng.integers(words[0], words[1] + 1)),
                              others_only=others_only)
        planned.append([(w, spoken_part(clip)) for w, clip in chosen])
    seconds = sum(sum(len(p) for _, p in phrase) / RATE + len(phrase) * 0.4 + pause[1] for phrase in planned) + 2
    n = int(seconds * RATE)
    noise = np.zeros(n + 5 * RATE)
    fade = np.sqrt(np.linspace(0, 1, RATE))  # equal power
    for start in range(0, n, 4 * RATE):
        piece = crop(rng, noises, 5 * RATE) * 10 ** (rng.uniform(-55, -40) / 20)
        piece[:RATE] *= fade if start else 1.0
        piece[4 * RATE:] *= fade[::-1]
        noise[start:start + 5 * RATE] += piece
    noise = noise[:n]
    samples, truth = noise.copy(), []
    t = int(rng.uniform(0.8, 1.5) * RATE)
    margin = int(MARGIN * RATE)
    for phrase in planned:
        start = t
        for i, (_, piece) in enumerate(phrase):
            if i:
                t += int((rng.uniform(*GAP_SECONDS) - 2 * MARGIN) * RATE)
            noise_rms = np.sqrt(np.mean(noise[t:t + len(piece)] ** 2))
            samples[t:t + len(piece)] += piece * noise_rms * 10 ** (rng.uniform(*snr_db) / 20) / (loud_rms(piece) + 1e-9)
            t += len(piece)
        spoken = [w for w, _ in phrase]
        truth.append({"text": " ".join(spoken), "words": spoken, "start": round((start + margin) / RATE, 3),
                      "end": round((t - margin) / RATE, 3)})
        t += int(rng.uniform(*pause) * RATE)
    n = t + RATE
    return np.clip(samples[:n], -1, 1).astype(np.float32), RATE, truth


def write_phrase_folder(folder, split, count, seed=0, seconds=3.0, fixtures=None):
    """`count` phrases of one split as FOLDER/go_left/NNNN.wav (the layout `edgenn convert --task phrases` reads
    for --calibration and --eval), with the training recipe's augmentation; the noise is the training part of
    the background recordings for the train split, the held-out part otherwise."""
    from pathlib import Path

    from edgenn.wav import write_wav

    folder = Path(folder)
    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng([seed, 15])
    speakers = speaker_words(split, fixtures)
    names = sorted(speakers)
    noises = real_speech.background_noise("train" if split == "train" else "held_out", fixtures)
    for n in range(count):
        samples, tokens = training_phrase(rng, speakers[names[rng.integers(len(names))]], noises, seconds)
        words = [VOCABULARY[t] for t in tokens if VOCABULARY[t] != FILLER]
        if not words:
            continue
        (folder / "_".join(words)).mkdir(parents=True, exist_ok=True)
        write_wav(folder / "_".join(words) / f"{n:04d}.wav", samples, RATE)
    done.touch()
    return folder
