"""Make the demo's inputs: the committed sample WAV (with ground truth), and the calibration data
`make demo` hands to `edgenn demo`. (The sample video needs no espeak-ng, so `edgenn demo` makes it
itself with edgenn.demo_shapes.)

    python -m training.make_demo_samples                    # rewrite edgenn/demo/sample_keywords.* (commit)
    python -m training.make_demo_samples --calibration DIR  # DIR/images (shapes), DIR/speech (WAVs)

The sample WAV is real speakers of the test split (never trained on, never used to choose settings) over
the held-out part of the real background noise, each word 20-35 dB above it; calibration uses augmented clips of training speakers.
Speech Commands dataset by Pete Warden / Google, CC BY 4.0."""

import argparse
import json
import shutil
from pathlib import Path


from edgenn import demo_shapes
from edgenn.wav import write_wav
from training import real_speech

DEMO = Path(__file__).resolve().parents[1] / "edgenn" / "demo"
STREAM_SEED, CALIBRATION_SEED = 11, 101


def write_samples(folder=DEMO):
    # a quiet room (each word 20-35 dB over the noise), as a first try on a desk usually is
    samples, rate, truth = real_speech.make_keyword_stream("test", 60, STREAM_SEED, snr_db=(20, 35))
    write_wav(folder / "sample_keywords.wav", samples, rate)
    (folder / "sample_keywords.json").write_text(json.dumps(
        {"rate": rate, "seconds": len(samples) / rate, "seed": STREAM_SEED,
         "made_by": "python -m training.make_demo_samples (training/real_speech.make_keyword_stream, test speakers)",
         "credit": real_speech.CREDIT, "words": [{"time": t, "word": w} for t, w in truth]}, indent=1))
    return folder / "sample_keywords.wav"


def write_calibration(root):
    root = Path(root)
    images = root / "images"
    if not (images / ".complete").exists():
        shutil.rmtree(images, ignore_errors=True)
        demo_shapes.write_video_frames(images, seconds=8, fps=8, seed=CALIBRATION_SEED)
        (images / ".complete").touch()
    real_speech.write_wav_folder(root / "speech", "train", per_label=16, seed=CALIBRATION_SEED, augmented=True)
    real_speech.write_wav_folder(root / "speech_eval", "test")  # the demo reports int8 accuracy on these
    return root


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", help="write calibration data into this folder instead of the samples")
    args = parser.parse_args()
    print(write_calibration(args.calibration) if args.calibration else write_samples())


if __name__ == "__main__":
    main()
