"""Make the demo's inputs: the committed sample WAV (with ground truth), and the calibration data
`make demo` hands to `edgenn demo`. (The sample video needs no espeak-ng, so `edgenn demo` makes it
itself with edgenn.demo_shapes.)

    python -m training.make_demo_samples                    # rewrite edgenn/demo/sample_keywords.* (commit)
    python -m training.make_demo_samples --calibration DIR  # DIR/images (shapes), DIR/speech (WAVs)

Samples use held-out seeds and held-out voices; calibration uses training voices and other seeds."""

import argparse
import json
import shutil
from pathlib import Path


from edgenn import demo_shapes
from edgenn.wav import write_wav
from training import speech_data

DEMO = Path(__file__).resolve().parents[1] / "edgenn" / "demo"
STREAM_SEED, CALIBRATION_SEED = 11, 101


def write_samples(folder=DEMO):
    samples, rate, truth = speech_data.make_keyword_stream(seconds=45, seed=STREAM_SEED)
    write_wav(folder / "sample_keywords.wav", samples, rate)
    (folder / "sample_keywords.json").write_text(json.dumps(
        {"rate": rate, "seconds": len(samples) / rate, "seed": STREAM_SEED,
         "words": [{"time": t, "word": w} for t, w in truth]}, indent=1))
    return folder / "sample_keywords.wav"


def write_calibration(root):
    root = Path(root)
    images = root / "images"
    if not (images / ".complete").exists():
        shutil.rmtree(images, ignore_errors=True)
        demo_shapes.write_video_frames(images, seconds=8, fps=8, seed=CALIBRATION_SEED)
        (images / ".complete").touch()
    speech_data.write_wav_folder(root / "speech", per_keyword=12, held_out=False, seed=CALIBRATION_SEED)
    return root


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", help="write calibration data into this folder instead of the samples")
    args = parser.parse_args()
    print(write_calibration(args.calibration) if args.calibration else write_samples())


if __name__ == "__main__":
    main()
