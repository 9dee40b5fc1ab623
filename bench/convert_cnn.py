"""CNN converter benchmark: int8 vs float32 latency of the demo CNNs in LiteRT (same run), and the
time `edgenn convert` takes for a Keras MobileNetV2 (alpha 0.35, 96x96, weights=None) to int8 with
100 calibration images.

    .venv/bin/python bench/convert_cnn.py [--threads 2] [--runs 300] [--skip-mobilenet]

Prints markdown rows for BENCHMARKS.md ("## CNN converter").
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgenn import demo_shapes
from edgenn.bundle import read_manifest
from edgenn.converters.pipeline import Options, convert_all
from edgenn.runtime import open_model

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "edgenn" / "demo"
SHAPES_DATA = REPO / "tests" / "shapes_data.py"
MOBILENET = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras
keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=4).save(sys.argv[1])
"""


def median_ms(path, threads, runs):
    model = open_model(path, threads=threads)
    x = np.random.default_rng(0).uniform(0, 1, model.inputs[0].shape).astype(np.float32)
    model.set_input(0, x)
    for _ in range(20):
        model.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.invoke()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def demo_rows(out, threads, runs):
    card = json.loads((DEMO / "shapes.json").read_text())
    labels = out / "labels.txt"
    labels.write_text("\n".join(card["labels"]) + "\n")
    jobs = []
    for kind in ("classifier", "detector"):
        for mode in ("float32", "int8"):
            options = Options(quantize=mode, calibration=f"{SHAPES_DATA}:{kind}_calibration",
                              eval=f"{SHAPES_DATA}:{kind}_heldout", num_eval=300, labels=str(labels),
                              mean=card["normalisation"]["mean"], std=card["normalisation"]["std"])
            jobs.append((DEMO / card[kind]["file"], out / f"{kind}_{mode}.tflite", options))
    results = {Path(r.output).stem: r for r in convert_all(jobs)}
    rows = []
    for kind in ("classifier", "detector"):
        f32, i8 = results[f"{kind}_float32"], results[f"{kind}_int8"]
        t32, t8 = median_ms(f32.output, threads, runs), median_ms(i8.output, threads, runs)
        ev = read_manifest(i8.output)["evaluation"]
        metric = "accuracy" if kind == "classifier" else "map50"
        rows.append(f"| shapes_{kind} | {f32.size_bytes / 1024:.0f} / {i8.size_bytes / 1024:.0f} KB | "
                    f"{t32:.3f} | {t8:.3f} | {t32 / t8:.2f}x | {100 * ev['top1_agreement']:.1f} % | "
                    f"{100 * ev[metric + '_float']:.1f} → {100 * ev[metric + '_converted']:.1f} % |")
    return rows


def mobilenet_seconds(out):
    model = out / "mobilenet_v2_035_96.keras"
    subprocess.run([sys.executable, "-c", MOBILENET, str(model)], check=True, capture_output=True)
    demo_shapes.write_image_folder(out / "cal", 100, seed=1, size=96)
    demo_shapes.write_image_folder(out / "eval", 20, seed=2, size=96)
    edgenn = Path(sys.executable).with_name("edgenn")
    start = time.time()
    subprocess.run([str(edgenn), "convert", str(model), "-o", str(out / "mobilenet_int8.tflite"),
                    "--calibration", str(out / "cal"), "--num-calibration", "100", "--eval", str(out / "eval"),
                    "--mean", "127.5", "--std", "127.5"], check=True)
    return time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--skip-mobilenet", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        if (DEMO / "shapes.json").exists():
            print(f"| model | size float32 / int8 | float32 ms | int8 ms | speed-up | top-1 agreement | "
                  f"float → int8 ({args.threads} threads, median of {args.runs}) |")
            print("|---|---|---|---|---|---|---|")
            for row in demo_rows(out, args.threads, args.runs):
                print(row)
        else:
            print("demo CNNs missing: run training/train_shapes.py", file=sys.stderr)
        if not args.skip_mobilenet:
            print(f"MobileNetV2 0.35 96x96 -> int8, 100 calibration images: {mobilenet_seconds(out):.1f} s "
                  f"(edgenn convert, wall clock, load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
