"""Camera runner throughput and freshness.

1. Video file, read as fast as the pipeline takes frames: pipeline FPS / (1 / median invoke time)
   shows how much of the model's own speed the runner keeps (target >= 0.9).
2. The same video paced at its native frame rate (like a live camera): mean frame age at inference
   (capture -> invoke starts) / median invoke time (target <= 1.5).

    python bench/camera_fps.py [--frames 120] [--model NAME=PATH ...] [--json]

Without --model it measures the COCO SSD fixture. A model named "demo" (the demo detector bundle,
e.g. --model demo=shapes_detector_int8.tflite) runs on a generated demo-shapes video instead.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2

from edgenn.devices.camera import run_camera

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("EDGENN_FIXTURES", REPO.parent / "shared" / "fixtures"))
SSD = FIXTURES / "models/tflite_support/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite"


def fixture_video(path, frames, fps):
    """640x480 mp4v video alternating two fixture photos."""
    images = [cv2.imread(str(FIXTURES / "images" / name)) for name in
              ("tflite_support/dogs.jpg", "tflite_support/cats_and_dogs.jpg")]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for i in range(frames):
        writer.write(cv2.resize(images[(i // 10) % 2], (640, 480)))
    writer.release()
    return path


def demo_video(path, frames, fps):
    from edgenn.demo_shapes import write_demo_video
    return write_demo_video(path, seconds=frames / fps, fps=fps, seed=1)


def measure(model, video, fps, threads):
    quiet = lambda message: None  # noqa: E731
    fast = run_camera(model, str(video), threads=threads, log=quiet)
    paced = run_camera(model, str(video), realtime=True, threads=threads, log=quiet)
    return {"model": Path(model).name, "frames": fast["frames"], "fps": fast["fps"],
            "invoke_ms_p50": fast["invoke_ms"]["p50"], "prepare_ms_p50": fast["prepare_ms"]["p50"],
            "fps_ratio": round(fast["fps"] * fast["invoke_ms"]["p50"] / 1000, 3),
            "paced_fps": fps, "paced_frames": paced["frames"], "paced_dropped": paced["dropped"],
            "paced_invoke_ms_p50": paced["invoke_ms"]["p50"], "frame_age_ms_mean": paced["frame_age_ms"]["mean"],
            "age_ratio": round(paced["frame_age_ms"]["mean"] / paced["invoke_ms"]["p50"], 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--fps", type=int, default=30, help="native frame rate of the paced video")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    models = [m.split("=", 1) for m in args.model] or [["ssd", str(SSD)]]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, path in models:
            make = demo_video if name == "demo" else fixture_video
            video = make(Path(folder) / f"{name}.mp4", args.frames, args.fps)
            rows.append({"name": name, **measure(path, video, args.fps, args.threads)})
    if args.json:
        print(json.dumps(rows))
        return
    print("| model | pipeline FPS | median invoke ms | FPS ÷ (1/invoke) | paced at | mean frame age ms "
          "| age ÷ invoke | dropped (paced) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['fps']:.1f} | {r['invoke_ms_p50']:.1f} | {r['fps_ratio']:.2f} | "
              f"{r['paced_fps']} fps | {r['frame_age_ms_mean']:.1f} | {r['age_ratio']:.2f} | "
              f"{r['paced_dropped']}/{r['paced_frames'] + r['paced_dropped']} |")


if __name__ == "__main__":
    sys.exit(main())
