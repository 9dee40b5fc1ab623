"""Measure a keyword bundle the way the device runs it (edgenn's front-end, runtime and detector; no TensorFlow).

    audio = load_audio_model("speech_commands.tflite")
    accuracy, predicted = clip_accuracy(audio, clips, labels, LABELS)    # one 1 s window per clip
    scored = score_stream(audio, samples, "streaming")                   # the model's scores, once
    events = detect(audio, scored, samples, "streaming", threshold=0.7)  # cheap: any detector setting

Scores are computed once per stream and mode and the detector replayed over them, so choosing the
listen defaults over a grid of settings costs one model pass per stream.
"""

import numpy as np

from edgenn.audio_frontend import FrontEnd
from edgenn.devices.speech import DEFAULTS, Detector, EnergyTrack, make_scorer
from edgenn.streaming import run_steps
from training.real_speech import fit_window


def clip_accuracy(audio, clips, labels, label_names):
    """(accuracy, predicted indices into label_names) with each clip as one window: the window model once, or the
    step model over its frames from zero state. The model's labels are mapped to label_names by name."""
    frontend = FrontEnd(audio.frontend)
    length = int(round(audio.window_seconds * audio.rate))
    to_ours = [list(label_names).index(label) for label in audio.labels]
    predicted = []
    for clip in clips:
        features = frontend.features(fit_window(np.asarray(clip, np.float32), length))
        scores = run_steps(audio.model, features, audio.streaming) if audio.streaming else \
            audio.model.run(features[None])[0]
        predicted.append(to_ours[int(np.argmax(scores))])
    predicted = np.array(predicted)
    return float(np.mean(predicted == np.asarray(labels))), predicted


def score_stream(audio, samples, mode, hop_ms=None, copies=4, block=320):
    """[(end sample, scores)] of the whole stream, as `edgenn listen` computes them."""
    hop_ms = hop_ms or DEFAULTS[audio.task]["hop_ms"]
    scorer = make_scorer(audio, mode, hop_ms, copies)
    out = []
    for i in range(0, len(samples), block):
        out += scorer.push(samples[i:i + block])
    return out


def detect(audio, scored, samples, mode, threshold, smoothing_ms, refractory_ms, hop_ms=None):
    """Events ({"label", "stream_time", "score"}) the Listener's detector gives on pre-computed scores."""
    hop_ms = hop_ms or DEFAULTS[audio.task]["hop_ms"]
    interval = audio.frontend.hop_samples / audio.rate if mode == "streaming" else hop_ms / 1000
    detector = Detector(audio.labels, [threshold] * len(audio.labels), int(round(smoothing_ms / 1000 / interval)) or 1,
                        refractory_ms / 1000, exclusive=True)
    energy = EnergyTrack(audio.rate, len(samples) / audio.rate + 1)
    energy.push(samples)
    energy.values = np.asarray(energy.values, np.float32)  # onset() reads it whole, once per event
    events = []
    for end, scores in scored:
        for index, score in detector.update(end / audio.rate, scores):
            events.append({"label": audio.labels[index], "score": score,
                           "stream_time": energy.onset(end, audio.window_seconds) / audio.rate})
    return events
