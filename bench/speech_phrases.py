"""The demo phrase model on phrases of held-out speakers, int8, through `edgenn convert` and `edgenn listen`.

    python bench/speech_phrases.py [--model edgenn/demo/speech_phrases.keras] [--split dev] [--phrases 48]
    python bench/speech_phrases.py --bundle edgenn/demo/speech_phrases_int8.tflite   # a bundle as it is

1. Converts the Keras CTC model with `edgenn convert --task phrases` to an int8 window bundle and an int8
   --streaming bundle, calibrated on augmented phrases of training speakers, checked on phrases of the split.
2. A stream of `--phrases` phrases (1-3 command words, each phrase one speaker of the split, never trained
   on) over the held-out part of the real background noise (training/phrase_data.make_phrase_stream), as a
   WAV through `edgenn listen` (run_listen) in window and streaming mode, without and with a grammar of the
   phrases used: word error rate, whole-phrase accuracy, phrase-event latency after the last word, and the
   real-time factor. Then a stream of as many phrases of other words (no command among them) of the same
   speakers: every event with words on it is a false one. With --bundle, a streaming bundle made before (the
   shipped demo one) runs both modes instead of step 1. Several --seeds: one stream each, and the means over
   them (the streams for tuning listening settings: seed 0 of dev speakers is the acceptance stream, test
   speakers are never tuned on).
Speech Commands dataset by Pete Warden / Google, CC BY 4.0.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgenn.devices.listen import run_listen  # noqa: E402
from edgenn.metrics import score_phrases  # noqa: E402
from edgenn.wav import write_wav  # noqa: E402
from training import phrase_data  # noqa: E402


def convert(model, folder, split):
    """{"window": path, "streaming": path}: int8 bundles made by the edgenn CLI (TensorFlow in its own process)."""
    calibration = phrase_data.write_phrase_folder(folder / "calibration", "train", 300, seed=0)
    evaluation = phrase_data.write_phrase_folder(folder / f"eval_{split}", split, 200, seed=1)
    bundles = {}
    for mode, extra in (("window", []), ("streaming", ["--streaming"])):
        bundles[mode] = folder / f"speech_phrases_{mode}.tflite"
        if not bundles[mode].exists():
            subprocess.run([str(Path(sys.executable).with_name("edgenn")), "convert", str(model), "-o",
                            str(bundles[mode]), "--task", "phrases", "--quantize", "int8", "--calibration",
                            str(calibration), "--eval", str(evaluation), *extra], check=True)
    return bundles


def settings(grammar):
    """(name, mode, grammar or None) of the four ways a stream is listened to."""
    return [(f"{mode}{' + grammar' if with_grammar else ''}", mode, grammar if with_grammar else None)
            for mode in ("window", "streaming") for with_grammar in (False, True)]


def listen(bundle, wav, mode, grammar=None):
    events = []
    summary = run_listen(str(bundle), str(wav), mode=mode, grammar=grammar and str(grammar),
                         on_detection=events.append, log=lambda message: None)
    return events, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(REPO / "edgenn" / "demo" / "speech_phrases.keras"))
    parser.add_argument("--bundle", help="a --streaming phrase bundle to measure as it is (both modes)")
    parser.add_argument("--split", default="dev", help="speakers of the stream: dev (validation), test, or train "
                        "(the model's own speakers: for tuning the pause detector, not the words)")
    parser.add_argument("--phrases", type=int, default=48)
    parser.add_argument("--seeds", default="0", help="streams to make, e.g. 5,6,7,8")
    parser.add_argument("--snr", default="10,25", help="dB range of the words over the room noise")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "edgenn_bench_phrases"))
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.bundle:
        bundles = {"window": args.bundle, "streaming": args.bundle}
    else:
        bundles = convert(args.model, work, args.split)
    snr = tuple(float(v) for v in args.snr.split(","))
    seeds = [int(seed) for seed in args.seeds.split(",")]
    results = {seed: measure_stream(bundles, work, args.split, args.phrases, snr, seed) for seed in seeds}
    if len(seeds) > 1:
        print(f"means over {len(seeds)} streams of {args.split} speakers (seeds {args.seeds}):")
        for key in (k for k in results[seeds[0]] if k != "other words"):
            mean = {k: float(np.mean([results[s][key][k] for s in seeds if results[s][key][k] is not None]))
                    for k in ("word_error_rate", "phrase_accuracy", "latency_median_s", "latency_p90_s")}
            print(f"{key:22s} WER {100 * mean['word_error_rate']:5.1f} %  "
                  f"phrases {100 * mean['phrase_accuracy']:5.1f} %  latency: mean of the streams' medians "
                  f"{mean['latency_median_s']:.3f} s, of their p90s {mean['latency_p90_s']:.3f} s")
        others = [results[s]["other words"] for s in seeds]
        print(f"other words: command events over {sum(o['phrases'] for o in others)} phrases: " + ", ".join(
            f"{key} {sum(o['command_events'][key] for o in others)}" for key in others[0]["command_events"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1) + "\n")


def measure_stream(bundles, work, split, phrases, snr, seed):
    """{mode (+ grammar): scores} of both modes, without and with a grammar, on one stream; printed as it goes."""
    samples, rate, truth = phrase_data.make_phrase_stream(split, phrases, snr_db=snr, seed=seed)
    wav = work / f"stream_{split}_{seed}.wav"
    write_wav(wav, samples, rate)
    grammar = work / f"grammar_{split}_{seed}.txt"
    grammar.write_text("\n".join(sorted({p["text"] for p in truth})) + "\n")
    print(f"stream (seed {seed}): {len(truth)} phrases, {sum(len(p['words']) for p in truth)} words of {split} "
          f"speakers, {len(samples) / rate:.0f} s, words {snr[0]:.0f}-{snr[1]:.0f} dB over the room noise; grammar "
          f"of {len(grammar.read_text().split(chr(10))) - 1} phrases")
    results = {}
    for key, mode, given in settings(grammar):
        events, summary = listen(bundles[mode], wav, mode, given)
        scored = score_phrases(truth, events)
        results[key] = {**{k: v for k, v in scored.items() if k != "wrong"},
                        "real_time_factor": summary["real_time_factor"], "wrong": scored["wrong"]}
        print(f"{key:22s} WER {100 * scored['word_error_rate']:5.1f} %  phrases {100 * scored['phrase_accuracy']:5.1f} %"
              f"  latency median {scored['latency_median_s']} s, p90 {scored['latency_p90_s']} s, max "
              f"{scored['latency_max_s']} s  "
              f"RTF {summary['real_time_factor']:.4f}  events {scored['events']}")
        for miss in scored["wrong"]:
            print(f"    said {miss['said']!r:22s} heard {miss['heard']}")
    results["other words"] = measure_others(bundles, work, split, phrases, snr, seed, grammar)
    return results


def measure_others(bundles, work, split, phrases, snr, seed, grammar):
    """{mode (+ grammar): command events} on a stream of the split's other words."""
    samples, rate, truth = phrase_data.make_phrase_stream(split, phrases, snr_db=snr, seed=seed, others_only=True)
    wav = work / f"others_{split}_{seed}.wav"
    write_wav(wav, samples, rate)
    heard = {key: sum(1 for event in listen(bundles[mode], wav, mode, given)[0] if event["words"])
             for key, mode, given in settings(grammar)}
    print(f"other words (seed {seed}): {len(truth)} phrases of 1-3 words that are no command; events with words: "
          + ", ".join(f"{key} {count}" for key, count in heard.items()))
    return {"phrases": len(truth), "command_events": heard}


if __name__ == "__main__":
    main()
