"""`edgenn camera` throughput against the loops people write by hand, all in one run.

    python bench/camera_throughput.py [--frames 600] [--rounds 3] [--json]

For each model, on the same video read as fast as it goes:
  edgenn     run_camera with default options (threads chosen by measurement);
  naive      the TFLite Raspberry Pi examples' serial loop: read, BGR->RGB, cv2.resize, invoke with
             every core, read the outputs; "naive+decode" also turns them into results with edgenn's
             decoder, as edgenn does for every frame;
  model      the model alone: invoke in a loop with every core (the model-bound limit);
  mediapipe  MediaPipe's ObjectDetector on the same frames (SSD only; it runs in .venv-metadata-readers,
             which has MediaPipe, as TensorFlow and MediaPipe cannot share a venv).
Models: the COCO SSD fixture on a 1200x600 video of fixture photos (and on a 1280x720 one, which is not a
whole multiple of its input: the exact resize instead of OpenCV's fast one), the demo detector bundle
(1 ms invoke; --demo PATH, made by `edgenn demo`) on a generated demo-shapes video, and YOLOv8n
(large invoke; fixtures' agpl_ultralytics, test-only) on the 1200x600 video.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from edgenn.devices.camera import machine_cores, run_camera  # noqa: E402
from edgenn.bundle import read_labels, read_manifest  # noqa: E402
from edgenn.image import Placement  # noqa: E402
from edgenn.runtime import open_model  # noqa: E402
from edgenn.vision import VisionTask  # noqa: E402

FIXTURES = Path(os.environ.get("EDGENN_FIXTURES", REPO.parent / "shared" / "fixtures"))
SSD = FIXTURES / "models/tflite_support/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite"
YOLO = FIXTURES / "models/agpl_ultralytics/yolov8n_full_integer_quant.tflite"
MEDIAPIPE_PYTHON = REPO / ".venv-metadata-readers" / "bin" / "python"
MEDIAPIPE_LOOP = """
import sys, time, cv2, mediapipe as mp
from mediapipe.tasks.python import vision, BaseOptions
detector = vision.ObjectDetector.create_from_options(vision.ObjectDetectorOptions(
    base_options=BaseOptions(model_asset_path=sys.argv[1]), max_results=10, score_threshold=0.3))
video = cv2.VideoCapture(sys.argv[2])
frames, start = 0, time.perf_counter()
while True:
    ok, frame = video.read()
    if not ok:
        break
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    detector.detect(image)
    frames += 1
print(frames / (time.perf_counter() - start))
"""


def photo_video(path, frames, size=(1200, 600)):
    pictures = [cv2.resize(cv2.imread(str(FIXTURES / "images/tflite_support" / name)), size)
                for name in ("cats_and_dogs.jpg", "dogs.jpg", "multi_objects.jpg")]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    for i in range(frames):  # a slow pan, so no two frames are alike
        writer.write(np.roll(pictures[(i // 60) % len(pictures)], 2 * i, axis=1))
    writer.release()
    return path


def naive_fps(model_path, video, threads, decode=False):
    """The examples' loop; float inputs get pixel / 255 (what the demo detector and YOLOv8n take)."""
    model = open_model(model_path, threads=threads)
    task = VisionTask.create(model, read_manifest(model_path), labels=read_labels(model_path)) if decode else None
    tensor = model.inputs[0]
    height, width = tensor.shape[1], tensor.shape[2]
    capture = cv2.VideoCapture(str(video))
    frames, start = 0, time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        pixels = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (width, height))[None]
        if tensor.dtype == np.uint8:
            model.interpreter.set_tensor(tensor.index, pixels)
        elif tensor.dtype == np.int8:
            model.interpreter.set_tensor(tensor.index, (pixels.astype(np.int16) - 128).astype(np.int8))
        else:
            model.set_input(0, pixels.astype(np.float32) / 255.0)
        model.invoke()
        outputs = [model.output(i, raw=True) for i in range(len(model.outputs))]
        if task:
            placement = Placement(width / frame.shape[1], height / frame.shape[0], 0.0, 0.0)
            task.decode(outputs, (placement, (frame.shape[1], frame.shape[0])), raw=True)
        frames += 1
    return frames / (time.perf_counter() - start)


def model_fps(model_path, threads, runs=300):
    model = open_model(model_path, threads=threads)
    tensor = model.inputs[0]
    model.interpreter.set_tensor(tensor.index, np.zeros(tensor.shape, tensor.dtype))
    for _ in range(10):
        model.invoke()
    start = time.perf_counter()
    for _ in range(runs):
        model.invoke()
    return runs / (time.perf_counter() - start)


def mediapipe_fps(model_path, video):
    if not MEDIAPIPE_PYTHON.exists():
        return None
    done = subprocess.run([str(MEDIAPIPE_PYTHON), "-c", MEDIAPIPE_LOOP, str(model_path), str(video)],
                          capture_output=True, text=True, timeout=900)
    return float(done.stdout.split()[-1]) if done.returncode == 0 else None


def measure(name, model_path, video, cores, mediapipe, rounds):
    """Every contender once a round, in turn, the order reversed every other round; FPS are medians over the
    rounds and ratios the medians of each round's ratios: this machine's speed drifts by 10-20 % over a
    minute, which single runs, or ratios of medians, would put into the ratios."""
    contenders = {"edgenn": lambda: run_camera(model_path, str(video), log=lambda message: None),
                  "naive": lambda: naive_fps(model_path, video, cores),
                  "naive_decode": lambda: naive_fps(model_path, video, cores, decode=True),
                  "model": lambda: model_fps(model_path, cores)}
    runs = {key: [] for key in contenders}
    threads = []
    for round_ in range(rounds):
        for key in (list(contenders) if round_ % 2 == 0 else reversed(list(contenders))):
            result = contenders[key]()
            if key == "edgenn":
                threads.append(result["threads"])
                frames, result = result["frames"], result["fps"]
            runs[key].append(result)
    row = {"model": name, "frames": frames, "rounds": rounds,
           **{f"{k}_fps": round(statistics.median(v), 1) for k, v in runs.items()},
           "edgenn_threads": threads}
    for other in ("naive", "naive_decode", "model"):
        row[f"vs_{other}"] = round(statistics.median(e / o for e, o in zip(runs["edgenn"], runs[other])), 3)
        row[f"vs_{other}_rounds"] = [round(e / o, 3) for e, o in zip(runs["edgenn"], runs[other])]
    if mediapipe:
        row["mediapipe_fps"] = mediapipe_fps(model_path, video)
        row["vs_mediapipe"] = round(row["edgenn_fps"] / row["mediapipe_fps"], 3) if row["mediapipe_fps"] else None
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3, help="each contender runs once a round; medians")
    parser.add_argument("--demo", default="/tmp/demo-out/shapes_detector_int8.tflite",
                        help="the demo detector bundle (edgenn demo writes it)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cores = machine_cores()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        photos = photo_video(Path(folder) / "photos.mp4", args.frames)
        rows.append(measure("coco_ssd_mobilenet_v1", SSD, photos, cores, True, args.rounds))
        print(json.dumps(rows[-1]), flush=True)
        # 1200x600 is a whole multiple of the SSD's 300x300, where the resize takes OpenCV's fast path
        wide = photo_video(Path(folder) / "photos_720p.mp4", args.frames, size=(1280, 720))
        rows.append(measure("coco_ssd_mobilenet_v1 (1280x720)", SSD, wide, cores, False, args.rounds))
        print(json.dumps(rows[-1]), flush=True)
        if Path(args.demo).exists():
            from edgenn.demo_shapes import write_demo_video

            shapes = write_demo_video(Path(folder) / "shapes.mp4", seconds=args.frames / 30, fps=30, seed=1)
            rows.append(measure("demo shapes detector", args.demo, shapes, cores, False, args.rounds))
            print(json.dumps(rows[-1]), flush=True)
        if YOLO.exists():
            rows.append(measure("yolov8n int8", YOLO, photos, cores, False, args.rounds))
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        print(json.dumps({"cores": cores, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
