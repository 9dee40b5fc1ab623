"""The demo speech model on real speakers, int8, through edgenn's front-end, runtime and `edgenn listen`.

    python bench/speech_real.py [--model edgenn/demo/speech_commands.keras] [--split test] [--seconds 150]

1. Converts the Keras model with `edgenn convert` to an int8 window bundle and an int8 --streaming
   bundle, calibrated on augmented clips of training speakers.
2. 12-class accuracy on every clip of the split's speakers (never trained on), for both bundles, and
   the MLCommons Tiny reference DS-CNN on the same clips in the same run.
3. A keyword stream of the split's speakers over the held-out real background noise
   (training/real_speech.make_keyword_stream): recall, false events per minute and real-time factor
   through `edgenn listen` (run_listen) in window and streaming mode, default settings.
4. The 9 words of fixtures/audio/speech_commands (other speakers): heard, wrong events.
5. Cost: median invoke of the step, window and reference models; model time per second of audio.
Speech Commands dataset by Pete Warden / Google, CC BY 4.0.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgenn.devices.listen import run_listen  # noqa: E402
from edgenn.devices.speech import load_audio_model  # noqa: E402
from edgenn.metrics import match_keywords  # noqa: E402
from edgenn.streaming import Stream  # noqa: E402
from edgenn.wav import write_wav  # noqa: E402
from training import real_speech  # noqa: E402
from training.keyword_eval import clip_accuracy, detect, score_stream  # noqa: E402
from training.tune_listen import REFRACTORY_MS, SMOOTHING_MS, THRESHOLDS  # noqa: E402
from training.speech_data import LABELS  # noqa: E402



def convert(model, folder, calibration):
    """{"window": path, "streaming": path}: int8 bundles made by the edgenn CLI (TensorFlow in its own process)."""
    labels = folder / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    bundles = {}
    for mode, extra in (("window", []), ("streaming", ["--streaming"])):
        bundles[mode] = folder / f"speech_commands_{mode}.tflite"
        if not bundles[mode].exists():
            subprocess.run([str(Path(sys.executable).with_name("edgenn")), "convert", str(model), "-o",
                            str(bundles[mode]), "--task", "keywords", "--quantize", "int8", "--calibration",
                            str(calibration), "--labels", str(labels), *extra], check=True)
    return bundles


def fixture_words(bundle, mode, fixtures):
    """(heard, wrong events, total words) over the fixture clips."""
    heard = wrong = total = 0
    for name, words in real_speech.FIXTURE_WORDS.items():
        events = []
        run_listen(bundle, str(Path(fixtures) / "audio" / "speech_commands" / name), mode=mode,
                   on_detection=events.append, log=lambda message: None)
        said, got = Counter(words), Counter(e["label"] for e in events)
        heard += sum((said & got).values())
        wrong += sum((got - said).values())
        total += len(words)
    return heard, wrong, total


def best_recall(audio, samples, truth, mode, max_false_per_minute=1.0):
    """(recall, false per minute, setting): the model's best detector setting on this very stream with at most
    `max_false_per_minute` false events — an upper bound that compares models apart from how each was tuned."""
    minutes = len(samples) / audio.rate / 60
    scored = score_stream(audio, samples, mode)
    best = (0.0, 0.0, None)
    for threshold in THRESHOLDS:
        for smoothing in SMOOTHING_MS:
            for refractory in REFRACTORY_MS:
                events = detect(audio, scored, samples, mode, threshold, smoothing, refractory)
                recall, false, _ = match_keywords(truth, events, 0.5)
                if len(false) / minutes <= max_false_per_minute and recall > best[0]:
                    best = (round(recall, 4), round(len(false) / minutes, 2), [threshold, smoothing, refractory])
    return best


def median_ms(call, runs=300):
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return 1000 * float(np.median(times))


def cost(bundles, reference):
    """Model time per second of audio: the reference every 100 ms hop, our step model 50 frames x 4 states,
    and each model's parameters' bytes (the bundle size)."""
    step = load_audio_model(bundles["streaming"])
    stream = Stream(step.model, step.streaming)
    frame = np.zeros((1, 1, step.frontend.n_features), np.float32)
    window = load_audio_model(bundles["window"])
    features = np.zeros((1, window.window_frames, window.frontend.n_features), np.float32)
    ref_input = np.zeros((1, reference.window_frames, reference.frontend.n_features), np.float32)
    step_ms, window_ms = median_ms(lambda: stream.step(frame)), median_ms(lambda: window.model.run(features))
    ref_ms = median_ms(lambda: reference.model.run(ref_input))
    frames_per_s = step.rate / step.frontend.hop_samples
    return {"step_invoke_ms": round(step_ms, 4), "window_invoke_ms": round(window_ms, 4),
            "reference_invoke_ms": round(ref_ms, 4),
            "streaming_model_ms_per_audio_s": round(step_ms * frames_per_s * 4, 3),
            "reference_model_ms_per_audio_s": round(ref_ms * 10, 3),
            "step_bundle_kb": round(bundles["streaming"].stat().st_size / 1024, 1),
            "window_bundle_kb": round(bundles["window"].stat().st_size / 1024, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "edgenn" / "demo" / "speech_commands.keras"))
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument("--seconds", type=float, default=150.0, help="length of the keyword stream")
    parser.add_argument("--seed", type=int, default=0, help="keyword stream seed")
    parser.add_argument("--snr", type=float, nargs=2, default=(10, 25), metavar=("LOW", "HIGH"),
                        help="each word's level over the noise, dB (10 25: a noisy room; 20 35: a quiet one)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "edgenn-speech-real"))
    parser.add_argument("--fixtures", default=os.environ.get("EDGENN_FIXTURES", REPO.parent / "shared" / "fixtures"))
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    calibration = real_speech.write_wav_folder(work / "calibration", "train", per_label=25, seed=1, augmented=True,
                                               fixtures=args.fixtures)
    bundles = convert(args.model, work, calibration)
    clips, labels, speakers = real_speech.load_clips(args.split, args.fixtures)
    reference = load_audio_model(Path(args.fixtures) / "models" / "mlcommons_tiny" / "kws_ref_model.tflite",
                                 frontend="mlcommons_kws",
                                 labels=str(Path(args.fixtures) / "labels" / "speech_commands" / "kws_12_labels.txt"))
    report = {"split": args.split, "clips": len(clips), "speakers": len(set(speakers)), "accuracy": {}}
    for name, audio in (("window int8", load_audio_model(bundles["window"])),
                        ("streaming int8", load_audio_model(bundles["streaming"])),
                        ("MLCommons reference DS-CNN int8", reference)):
        report["accuracy"][name] = round(clip_accuracy(audio, clips, labels, LABELS)[0], 4)
        print(f"{name}: {report['accuracy'][name]:.4f} on {len(clips)} clips of {len(set(speakers))} speakers",
              flush=True)

    report["cost"] = cost(bundles, reference)
    print(f"cost: {json.dumps(report['cost'])}", flush=True)

    samples, rate, truth = real_speech.make_keyword_stream(args.split, args.seconds, args.seed, tuple(args.snr),
                                                           fixtures=args.fixtures)
    stream = work / f"stream_{args.split}_{args.seed}.wav"
    write_wav(stream, samples, rate)
    report["stream"] = {"seconds": args.seconds, "keywords": len(truth), "seed": args.seed, "snr_db": args.snr}
    for mode in ("window", "streaming"):
        events = []
        summary = run_listen(bundles[mode], str(stream), mode=mode, on_detection=events.append,
                             log=lambda message: None)
        recall, false, errors = match_keywords(truth, events, 0.5)
        heard, wrong, total = fixture_words(bundles[mode], mode, args.fixtures)
        report[mode] = {"recall": round(recall, 4), "false_per_minute": round(len(false) / (args.seconds / 60), 2),
                        "false": [(e["label"], e["stream_time"]) for e in false],
                        "real_time_factor": summary["real_time_factor"],
                        "fixture_words_heard": f"{heard}/{total}", "fixture_wrong_events": wrong}
        print(f"{mode}: {json.dumps(report[mode])}", flush=True)
    # Every model at its best detector setting for <= 1 false event a minute on this stream: the models compared.
    report["stream"]["best_setting_recall"] = {
        name: best_recall(audio, samples, truth, mode) for name, audio, mode in (
            ("window int8", load_audio_model(bundles["window"]), "window"),
            ("streaming int8", load_audio_model(bundles["streaming"]), "streaming"),
            ("MLCommons reference DS-CNN int8", reference, "window"))}
    print(f"best setting, <= 1 false/min: {json.dumps(report['stream']['best_setting_recall'])}", flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
