"""Make the demo's shipped files (sample WAV, labelled clips, int8 bundles) and its calibration data.

The sample WAV comes with its ground truth. (The sample video needs no espeak-ng, so `edgenn demo` makes it
itself with edgenn.demo_shapes.)

    python -m training.make_demo_samples                    # rewrite edgenn/demo/sample_*, speech_clips.* (commit)
    python -m training.make_demo_samples --calibration DIR  # DIR/images (shapes), DIR/speech (WAVs), DIR/speech_eval,
                                                            # DIR/phrases, DIR/phrases_eval (phrase WAVs)
    python -m training.make_demo_samples --bundles          # rewrite edgenn/demo/*_int8.tflite from the .keras (commit)

The sample WAV is real speakers of the test split (never trained on, never used to choose settings) over
the held-out part of the real background noise, each word 20-35 dB above it; the labelled clips are test
speakers' clips as recorded; the sample phrases are validation (dev) speakers' phrases of 1-3 words over the
same noise; calibration uses augmented clips and phrases of training speakers.
Speech Commands dataset by Pete Warden / Google, CC BY 4.0."""

import argparse
import json
import shutil
import tempfile
import wave
from pathlib import Path

import numpy as np

from edgenn import demo_run, demo_shapes
from edgenn.errors import EdgennError
from edgenn.wav import write_wav
from training import phrase_data, real_speech
from training.speech_data import LABELS

DEMO = Path(__file__).resolve().parents[1] / "edgenn" / "demo"
STREAM_SEED, CALIBRATION_SEED, CLIPS_SEED, PHRASES_SEED = 11, 101, 13, 17
SAMPLE_PHRASES = 20  # about a minute, 1.7 MB
CLIPS_PER_LABEL = 10  # 120 clips, 3.8 MB: enough for a floor on the device, small enough to ship


def write_samples(folder=DEMO):
    # a quiet room (each word 20-35 dB over the noise), as a first try on a desk usually is
    samples, rate, truth = real_speech.make_keyword_stream("test", 60, STREAM_SEED, snr_db=(20, 35))
    write_wav(folder / "sample_keywords.wav", samples, rate)
    (folder / "sample_keywords.json").write_text(json.dumps(
        {"rate": rate, "seconds": len(samples) / rate, "seed": STREAM_SEED,
         "made_by": "python -m training.make_demo_samples (training/real_speech.make_keyword_stream, test speakers)",
         "credit": real_speech.CREDIT, "words": [{"time": t, "word": w} for t, w in truth]}, indent=1))
    return folder / "sample_keywords.wav"


def write_phrase_samples(folder=DEMO):
    samples, rate, truth = phrase_data.make_phrase_stream("dev", SAMPLE_PHRASES, pause=(1.0, 1.6), seed=PHRASES_SEED)
    write_wav(folder / "sample_phrases.wav", samples, rate)
    (folder / "sample_phrases.json").write_text(json.dumps(
        {"rate": rate, "seconds": len(samples) / rate, "seed": PHRASES_SEED,
         "made_by": "python -m training.make_demo_samples (training/phrase_data.make_phrase_stream, dev speakers)",
         "credit": real_speech.CREDIT, "phrases": truth}, indent=1))
    return folder / "sample_phrases.wav"


def write_speech_clips(folder=DEMO):
    """speech_clips.wav: CLIPS_PER_LABEL clips of each label by test speakers, drawn by seed, one after another
    with their PCM untouched; speech_clips.json: where each starts, its label, speaker and source file."""
    rows = real_speech.clip_list("test")
    rng = np.random.default_rng([CLIPS_SEED, 3])
    pcm, clips, start = [], [], 0
    for index, label in enumerate(LABELS):
        paths = [(p, s) for p, i, s in rows if i == index]
        for k in sorted(rng.choice(len(paths), CLIPS_PER_LABEL, replace=False)):
            path, speaker = paths[k]
            with wave.open(str(path), "rb") as w:
                if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, real_speech.RATE):
                    raise EdgennError(f"{path}: not 16-bit 16 kHz mono as Speech Commands clips are")
                pcm.append(w.readframes(w.getnframes()))
            samples = len(pcm[-1]) // 2
            clips.append({"label": label, "start": start, "samples": samples, "speaker": speaker,
                          "source": f"{label}/{path.name}"})
            start += samples
    with wave.open(str(folder / "speech_clips.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(real_speech.RATE)
        w.writeframes(b"".join(pcm))
    (folder / "speech_clips.json").write_text(json.dumps(
        {"rate": real_speech.RATE, "seed": CLIPS_SEED, "per_label": CLIPS_PER_LABEL,
         "made_by": "python -m training.make_demo_samples (test speakers, training/real_speech.SPLITS)",
         "credit": real_speech.CREDIT, "clips": clips}, indent=1))
    return folder / "speech_clips.wav"


def write_calibration(root):
    root = Path(root)
    images = root / "images"
    if not (images / ".complete").exists():
        shutil.rmtree(images, ignore_errors=True)
        demo_shapes.write_video_frames(images, seconds=8, fps=8, seed=CALIBRATION_SEED)
        (images / ".complete").touch()
    real_speech.write_wav_folder(root / "speech", "train", per_label=16, seed=CALIBRATION_SEED, augmented=True)
    real_speech.write_wav_folder(root / "speech_eval", "test")  # the speech bundle's manifest: int8 accuracy on these
    phrase_data.write_phrase_folder(root / "phrases", "train", 200, seed=CALIBRATION_SEED)
    phrase_data.write_phrase_folder(root / "phrases_eval", "dev", 200, seed=CALIBRATION_SEED + 1)
    return root


def write_bundles(calibration, folder=DEMO):
    """The shipped bundles, converted as `edgenn demo --convert` does; their manifests name the .keras sha256."""
    with tempfile.TemporaryDirectory() as work:
        made = demo_run.convert_demo_models(Path(work), write_calibration(calibration), print)
        for bundle in made:
            shutil.copyfile(bundle, folder / bundle.name)
    return [folder / bundle.name for bundle in made]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", help="write calibration data into this folder instead of the samples")
    parser.add_argument("--bundles", action="store_true",
                        help="rebuild the shipped bundles (calibration: --calibration, default build/demo-calibration)")
    args = parser.parse_args()
    if args.bundles:
        print(*write_bundles(args.calibration or "build/demo-calibration"))
    elif args.calibration:
        print(write_calibration(args.calibration))
    else:
        print(write_samples(), write_speech_clips(), write_phrase_samples())


if __name__ == "__main__":
    main()
