"""Calibration and evaluation windows from a folder of WAVs (subfolder name = label).

Every clip goes through the shared front-end (edgenn.audio_frontend), the same code the device
runs, so calibration sees exactly the features the model will see. Clips at another sample rate
are resampled; a damaged WAV stops with one line naming it.
"""

from pathlib import Path

import numpy as np

from edgenn.audio_frontend import FrontEnd, FrontEndParams
from edgenn.errors import EdgennError
from edgenn.wav import read_wav


def window_features(samples, frontend, frames):
    """[frames, features] of one clip: zero-padded or cut to exactly `frames` frames."""
    return _fit_frames(frontend.features(samples), frames)


def _fit_frames(features, frames):
    if len(features) < frames:
        pad = np.zeros((frames - len(features), features.shape[1]), np.float32)
        features = np.concatenate([features, pad]) if len(features) else pad
    return features[:frames]


def load_windows(folder, params, frames, labels=None, limit=None, seed=0):
    """(windows [N, frames, features], label indices [N], label names) from FOLDER/LABEL/*.wav.

    labels: the model's label list (indices follow it; a subfolder not in it is an error); default:
    sorted subfolder names. limit: keep at most this many clips, drawn evenly across labels."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgennError(f"{folder}: no such folder; give a folder of WAVs with one subfolder per label")
    params = params if isinstance(params, FrontEndParams) else FrontEndParams.from_dict(params)
    found = {d.name: sorted(d.glob("*.wav")) for d in sorted(folder.iterdir()) if d.is_dir()}
    found = {name: files for name, files in found.items() if files}
    if not found:
        raise EdgennError(f"{folder}: no WAV files in subfolders; lay it out as {folder}/LABEL/clip.wav")
    labels = list(labels) if labels is not None else sorted(found)
    unknown = sorted(set(found) - set(labels))
    if unknown:
        raise EdgennError(f"{folder}: subfolder(s) {unknown} are not labels of the model ({labels}); "
                          "rename or remove them")
    clips = [(path, labels.index(name)) for name, files in found.items() for path in files]
    if limit and len(clips) > limit:  # round-robin over labels so every class is represented
        seen = {}
        keyed = []
        for i in np.random.default_rng(seed).permutation(len(clips)):
            label = clips[i][1]
            seen[label] = seen.get(label, 0) + 1
            keyed.append((seen[label], i))
        clips = [clips[i] for _, i in sorted(keyed)[:limit]]
    frontend = FrontEnd(params)
    windows = [window_features(read_wav(path, params.sample_rate)[0], frontend, frames) for path, _ in clips]
    return np.stack(windows), np.array([label for _, label in clips]), labels


def load_phrase_windows(folder, params, frames, labels, words, limit=None, seed=0, warnings=None):
    """(windows [N, frames, features], transcripts [N] of token-id lists into `labels`, or None) for a phrase
    model whose vocabulary is `words`; a line goes to `warnings` when WAVs are longer than the window.

    FOLDER/go_left/*.wav: the subfolder names what is said (words joined by '_' or spaces); WAVs right in
    FOLDER have no transcript (calibration only)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgennError(f"{folder}: no such folder; give a folder of phrase WAVs (subfolder = the phrase, e.g. "
                          "go_left/001.wav)")
    params = params if isinstance(params, FrontEndParams) else FrontEndParams.from_dict(params)
    clips = [(path, None) for path in sorted(folder.glob("*.wav"))]
    for sub in sorted(d for d in folder.iterdir() if d.is_dir()):
        said = sub.name.replace("_", " ").split()
        unknown = [w for w in said if w not in words]
        if unknown:
            raise EdgennError(f"{sub}: {', '.join(unknown)} is not a word of the model ({', '.join(words)}); name "
                              "each subfolder after its phrase, e.g. go_left")
        clips += [(path, [labels.index(w) for w in said]) for path in sorted(sub.glob("*.wav"))]
    if not clips:
        raise EdgennError(f"{folder}: no WAV files; lay it out as {folder}/go_left/clip.wav")
    if limit and len(clips) > limit:
        clips = [clips[i] for i in sorted(np.random.default_rng(seed).choice(len(clips), limit, replace=False))]
    frontend = FrontEnd(params)
    features = [frontend.features(read_wav(path, params.sample_rate)[0]) for path, _ in clips]
    longer = sum(len(f) > frames for f in features)
    if longer and warnings is not None:
        warnings.append(f"{longer} of {len(clips)} WAVs in {folder} are longer than the model's window of {frames} "
                        "frames: only their start is used (and their words after it count as missed)")
    windows = np.stack([_fit_frames(f, frames) for f in features])
    truths = [truth for _, truth in clips]
    if any(t is None for t in truths) and any(t is not None for t in truths):
        raise EdgennError(f"{folder}: WAVs both in phrase subfolders and at the top; put every WAV in a subfolder "
                          "named after what it says (go_left/), or all at the top (calibration only)")
    return windows, (truths if truths[0] is not None else None)
