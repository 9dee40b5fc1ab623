"""Choose `edgenn listen`'s keyword defaults on streams of dev speakers (never the test speakers we report).

    python -m training.tune_listen WINDOW.tflite STREAMING.tflite [--streams 3] [--seconds 120]

For each mode (and, in streaming mode, each number of staggered states) the model's scores are
computed once per stream; the detector is replayed over a grid of threshold x smoothing x refractory
period. The pick: the highest recall whose false events stay under --max-false per minute (summed
over the streams), ties to the larger threshold. Copy the printed settings into DEFAULTS in
devices/speech.py.
"""

import argparse
import itertools
import json

from edgenn.devices.speech import load_audio_model
from edgenn.metrics import match_keywords
from training import real_speech
from training.keyword_eval import detect, score_stream

THRESHOLDS = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85)
SMOOTHING_MS = (0, 100, 200, 300, 500)
REFRACTORY_MS = (500, 800)
STATES = (3, 4)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("window")
    parser.add_argument("streaming")
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--max-false", type=float, default=0.5, help="false events per minute allowed on dev")
    args = parser.parse_args()

    streams = [real_speech.make_keyword_stream("dev", args.seconds, seed=100 + i) for i in range(args.streams)]
    minutes = args.streams * args.seconds / 60
    words = sum(len(truth) for _, _, truth in streams)
    results = {}
    cases = [("window", args.window, None)] + [("streaming", args.streaming, k) for k in STATES]
    for mode, path, copies in cases:
        audio = load_audio_model(path)
        scored = [score_stream(audio, samples, mode, copies=copies or 4) for samples, _, _ in streams]
        best = None
        for threshold, smoothing, refractory in itertools.product(THRESHOLDS, SMOOTHING_MS, REFRACTORY_MS):
            hits = false = 0
            for (samples, _, truth), scores in zip(streams, scored):
                events = detect(audio, scores, samples, mode, threshold, smoothing, refractory)
                recall, wrong, _ = match_keywords(truth, events, 0.5)
                hits += round(recall * len(truth))
                false += len(wrong)
            row = {"threshold": threshold, "smoothing_ms": smoothing, "refractory_ms": refractory,
                   "recall": round(hits / words, 4), "false_per_minute": round(false / minutes, 2)}
            key = (row["false_per_minute"] <= args.max_false, row["recall"], -row["false_per_minute"], threshold)
            if best is None or key > best[0]:
                best = (key, row)
        name = mode if copies is None else f"streaming, {copies} states"
        results[name] = best[1]
        print(f"{name}: {json.dumps(best[1])}", flush=True)
    print(json.dumps({"dev_streams": args.streams, "seconds": args.seconds, "keywords": words, "best": results},
                     indent=1))


if __name__ == "__main__":
    main()
