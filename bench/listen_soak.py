"""Soak and strategy benchmark of `edgenn listen` on the generated keyword stream.

    python bench/listen_soak.py STREAMING.tflite [--window-model WINDOW.tflite] [--hours 1] [--seed 0]

1. Strategies, in this process, on one 60 s stream: window mode (window model every hop), and the
   step model per frame with K staggered states (K = 1, 2, 4) or one state never reset: recall,
   false events per minute, timing error, real-time factor.
2. Soak: `edgenn listen STREAMING.tflite --source -` in a child process fed the stream over and over
   as raw PCM, as fast as it takes it, for --hours of audio. The child's RSS is sampled every second;
   events written to the sink are counted against those detected, and sorted back into their pass
   and matched against the pass's truth, so the last hour finds as many keywords as the first.
   (Passes differ a little: 60 s is not a whole number of state resets, so each pass meets them at
   another phase.)
Bundles: `edgenn convert edgenn/demo/speech_commands.keras -o X.tflite --task keywords --quantize int8
--calibration WAVS/ [--streaming]`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgenn.devices.speech import Listener, load_audio_model  # noqa: E402
from edgenn.metrics import match_keywords  # noqa: E402
from training.speech_data import make_keyword_stream  # noqa: E402

SECONDS = 60.0


def match(truth, events, tolerance=0.5):
    """(hits, false, max |timing error|) of (label, start) events against (onset, word) truth."""
    _, false, errors = match_keywords(truth, [{"label": label, "stream_time": start} for label, start in events],
                                      tolerance)
    return len(errors), len(false), max(errors, default=0.0)


def strategies(samples, truth, streaming_model, window_model):
    rows = []
    cases = [("window mode, window model", window_model, "window", 2, True)] if window_model else []
    cases += [(f"streaming, {k} staggered state{'s' if k > 1 else ''}", streaming_model, "streaming", k, True)
              for k in (1, 2, 4)]
    cases += [("streaming, one state never reset", streaming_model, "streaming", 1, False)]
    for name, path, mode, copies, reset in cases:
        listener = Listener(load_audio_model(path), mode=mode, copies=copies)
        if not reset:
            listener.scorer.window = 1 << 62  # never reaches its reset
        events = []
        start = time.perf_counter()
        for i in range(0, len(samples), 320):
            events += [(d.label, d.start) for d in listener.push(samples[i:i + 320])]
        rtf = (time.perf_counter() - start) / SECONDS
        hits, false, worst = match(truth, events)
        rows.append((name, hits / len(truth), false / (SECONDS / 60), worst, rtf))
    print(f"\n{'strategy':<36}{'recall':>8}{'false/min':>11}{'max err s':>11}{'RTF':>8}")
    for name, recall, false, worst, rtf in rows:
        print(f"{name:<36}{recall:>8.3f}{false:>11.2f}{worst:>11.2f}{rtf:>8.4f}")


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def soak(samples, truth, model, hours):
    passes = int(round(hours * 3600 / SECONDS))
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()
    events_file = Path(tempfile.mkdtemp(prefix="edgenn-soak-")) / "events.jsonl"
    exe = Path(sys.executable).with_name("edgenn")
    child = subprocess.Popen([str(exe), "listen", str(model), "--source", "-", "--events", str(events_file),
                              "--json"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    fed = []

    def feed():
        for _ in range(passes):
            child.stdin.write(pcm)
            fed.append(time.monotonic())
        child.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    start = time.monotonic()
    writer.start()
    samples_rss = []  # (passes fed so far, RSS KiB)
    while child.poll() is None:
        samples_rss.append((len(fed), rss_kib(child.pid)))
        time.sleep(1.0)
    summary = json.loads(child.stdout.read())
    wall = time.monotonic() - start
    per_pass = [[] for _ in range(passes)]
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        index = min(int(event["stream_time"] // SECONDS), passes - 1)
        per_pass[index].append((event["label"], event["stream_time"] - index * SECONDS))
    written = sum(len(events) for events in per_pass)
    results = [match(truth, events) for events in per_pass]
    hits = [h for h, _, _ in results]
    false = [f for _, f, _ in results]
    warm = [rss for fed_passes, rss in samples_rss if fed_passes >= 2 and rss] or [samples_rss[-1][1]]
    print(f"\nsoak: {summary['audio_seconds'] / 3600:.2f} h of audio ({passes} passes of a {SECONDS:.0f} s stream, "
          f"{len(truth)} keywords each) in {wall:.0f} s wall, real-time factor {summary['real_time_factor']:.4f}")
    print(f"RSS after the first pass {warm[0] / 1024:.1f} MiB, peak {max(warm) / 1024:.1f} MiB, "
          f"last {warm[-1] / 1024:.1f} MiB: growth {(max(warm) - warm[0]) / 1024:.2f} MiB")
    print(f"events detected {summary['events']}, written {written}, overflows {summary['overflows']}, "
          f"lost audio {summary['lost_seconds']} s; keywords found per pass min {min(hits)} max {max(hits)} "
          f"of {len(truth)} (first pass {hits[0]}, last {hits[-1]}); false per pass min {min(false)} max {max(false)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="streaming bundle (edgenn convert --streaming)")
    parser.add_argument("--window-model", help="window bundle of the same model, for the strategy table")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    samples, _, truth = make_keyword_stream(SECONDS, args.seed)
    print(f"python bench/listen_soak.py {' '.join(sys.argv[1:])}")
    strategies(samples, truth, args.model, args.window_model)
    soak(samples, truth, args.model, args.hours)


if __name__ == "__main__":
    main()
