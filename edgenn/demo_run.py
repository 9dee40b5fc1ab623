"""`edgenn demo`: the whole product in one run on sample input.

Runs the shipped int8 bundles of the demo detector, speech-command model and phrase model (edgenn/demo/, made
from the Keras models beside them by `make demo-bundles`) — no TensorFlow, so it runs on a Pi's device install —
the camera runner on a generated shapes video and the microphone runner on the bundled keyword and phrase
WAVs (the phrases scored by word error rate): real speakers the models never heard (Speech Commands dataset by Pete Warden / Google, CC BY 4.0); or the live
camera and microphone. Scores both against ground truth, measures the speech bundle's 12-class accuracy
on the shipped labelled clips of unseen speakers, and writes an annotated video and a one-page HTML
report. With `convert` (TensorFlow installed, calibration data made in a checkout) it first rebuilds the
bundles from the Keras models; TensorFlow only ever runs in the converter's child process.
"""

import base64
import html
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgenn import demo_shapes
from edgenn.audio_frontend import FrontEnd
from edgenn.bundle import read_manifest
from edgenn.errors import EdgennError
from edgenn.metrics import match_keywords, mean_average_precision, score_phrases
from edgenn.wav import read_wav

DEMO = Path(__file__).with_name("demo")
DETECTOR_BUNDLE, SPEECH_BUNDLE, PHRASE_BUNDLE = ("shapes_detector_int8.tflite", "speech_commands_int8.tflite",
                                                 "speech_phrases_int8.tflite")
VIDEO_SEED = 7
# Bars are floors under today's int8 bundles, not targets. Keywords on real speakers (recall 0.85, 2 false
# events in the 1 min sample): the target of 0.9 and 1 per minute is not met yet (BENCHMARKS.md, "Real
# speakers"). Speech accuracy: 107 of the 120 shipped clips (0.892), all 13 misses keywords; the clips are
# 10 a label (drawn by seed, not chosen), so keywords weigh more than in the whole test split, where the
# same bundle scores 0.938 (its manifest: 500 of the 557 clips); 120 clips move it by about 3 pp.
DETECTOR_BAR, RECALL_BAR, FALSE_PER_MINUTE_BAR, TIMING_BAR, SPEECH_ACCURACY_BAR = 0.8, 0.7, 2.5, 0.5, 0.85
# Phrases: the shipped sample's 20 phrases of dev speakers (35 words) get 0.057 (phrases right 0.90); over 24
# streams of 48 phrases the same bundle gets 0.081 (BENCHMARKS.md, "Phrases"): 20 phrases move it by about 4 pp.
PHRASE_WER_BAR = 0.15


def demo_calibration(calibration):
    """The calibration folder `convert` needs, checked (with TensorFlow) before anything is written."""
    if importlib.util.find_spec("tensorflow") is None:
        raise EdgennError("--convert rebuilds the demo bundles from the Keras models with TensorFlow, which this "
                          "Python does not have: run `edgenn demo` without --convert (the shipped bundles need no "
                          "TensorFlow), or install edgenn[convert] on a host")
    calibration = Path(calibration)
    for part in ("images", "speech", "phrases"):
        if not (calibration / part).is_dir():
            raise EdgennError(f"{calibration / part}: demo calibration data missing; create it in an edgenn checkout "
                              "with `python -m training.make_demo_samples --calibration DIR` (or run `make demo`)")
    return calibration


def _convert(jobs, log):
    from edgenn.converters.pipeline import Options, convert_all

    log(f"converting {len(jobs)} demo models to int8 bundles (TensorFlow runs in a child process)…")
    return convert_all([(model, output, Options(**options)) for model, output, options in jobs])


def convert_demo_models(out, calibration, log):
    """int8 bundles of the demo detector, speech model and phrase model (the speech models' streaming step models:
    the smallest bundles, and they run in both listen modes); calibration: a checked demo_calibration() folder."""
    labels = out / "shapes_labels.txt"
    labels.write_text("\n".join(demo_shapes.LABELS) + "\n")
    speech_meta = json.loads((DEMO / "speech_commands.json").read_text())
    speech_labels = out / "speech_labels.txt"
    speech_labels.write_text("\n".join(speech_meta["labels"]) + "\n")
    detector, speech, phrases = out / DETECTOR_BUNDLE, out / SPEECH_BUNDLE, out / PHRASE_BUNDLE
    speech_eval = {"eval": str(calibration / "speech_eval")} if (calibration / "speech_eval").is_dir() else {}
    phrases_eval = {"eval": str(calibration / "phrases_eval")} if (calibration / "phrases_eval").is_dir() else {}
    _convert([(str(DEMO / "shapes_detector.keras"), str(detector),
               {"task": "detect", "quantize": "int8", "calibration": str(calibration / "images"),
                "labels": str(labels), "name": "shapes"}),
              (str(DEMO / "speech_commands.keras"), str(speech),
               {"task": "keywords", "quantize": "int8", "calibration": str(calibration / "speech"),
                "labels": str(speech_labels), "name": "speech_commands", "streaming": True, **speech_eval}),
              (str(DEMO / "speech_phrases.keras"), str(phrases),
               {"task": "phrases", "quantize": "int8", "calibration": str(calibration / "phrases"),
                "name": "speech_phrases", "streaming": True, **phrases_eval})], log)
    return detector, speech, phrases


def shipped_bundles():
    bundles = DEMO / DETECTOR_BUNDLE, DEMO / SPEECH_BUNDLE, DEMO / PHRASE_BUNDLE
    for bundle in bundles:
        if not bundle.is_file():
            raise EdgennError(f"{bundle}: the demo bundle is missing from this install; reinstall edgenn, or "
                              "rebuild it in a checkout with `make demo-bundles`")
    return bundles


def _make_out(out):
    """OUT, created and writable, before any work starts (so a bad --out leaves nothing half-written).

    Creating a file is the test that holds for root too."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise EdgennError(f"--out {out}: cannot write there ({exc.strerror}); give --out a folder you can write to, "
                          "e.g. --out ~/edgenn-demo") from None


def run_camera_part(detector, out, live, log):
    from edgenn.devices.camera import run_camera

    video = out / "sample_shapes.mp4"
    truth = None
    if live:
        source = "0"
    else:
        demo_shapes.write_demo_video(video, seconds=10, fps=15, seed=VIDEO_SEED)
        truth = json.loads(video.with_suffix(".json").read_text())["frames"]
        source = str(video)
    predictions, stills = {}, {}

    def keep(frame, results):
        predictions[frame.index] = [(d.label_id, d.score, d.box) for d in results]

    log(f"camera: {detector.name} on {'the live camera' if live else video.name}")
    summary = run_camera(detector, source, record=str(out / "annotated.mp4"), events=str(out / "camera_events.jsonl"),
                         threshold=0.3, duration=15 if live else None, on_result=keep, log=log)
    if summary.get("error"):
        raise EdgennError(f"camera run failed: {summary['error']}")
    result = {"summary": summary, "video": "annotated.mp4"}
    if truth:
        found = [predictions.get(f["frame"], []) for f in truth]
        expected = [[(o["class"], o["box"]) for o in f["objects"]] for f in truth]
        score, per_class = mean_average_precision(found, expected, iou=0.5, per_class=True)
        result.update(map=score, per_class={demo_shapes.LABELS[k]: v for k, v in per_class.items()})
    stills = _stills(out / "annotated.mp4", 3)
    return result, stills


def _stills(video, count):
    """A few frames of the annotated recording as JPEG bytes, for the report."""
    capture = cv2.VideoCapture(str(video))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
    images = []
    for index in [int(total * (i + 0.5) / count) for i in range(count)]:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if ok:
            images.append(cv2.imencode(".jpg", frame)[1].tobytes())
    capture.release()
    return images


def _listen(bundle, sample, events_file, live, log):
    """(summary, events) of `edgenn listen` with BUNDLE on the shipped SAMPLE WAV (or 20 s of the microphone)."""
    from edgenn.devices.listen import run_listen

    wav = DEMO / sample
    events = []
    log(f"microphone: {bundle.name} on {'the default microphone' if live else wav.name}")
    summary = run_listen(bundle, "default" if live else str(wav), events=str(events_file),
                         duration=20 if live else None, on_detection=events.append, log=log)
    if summary.get("error"):
        raise EdgennError(f"microphone run failed: {summary['error']}")
    return summary, events


def run_listen_part(speech, out, live, log):
    truth = None if live else [(w["time"], w["word"]) for w in
                               json.loads((DEMO / "sample_keywords.json").read_text())["words"]]
    summary, events = _listen(speech, "sample_keywords.wav", out / "microphone_events.jsonl", live, log)
    result = {"summary": summary, "events": [(round(e["stream_time"], 2), e["label"]) for e in events]}
    result["clip_accuracy"], result["clips"] = clip_accuracy(speech)
    evaluation = (read_manifest(speech) or {}).get("evaluation") or {}
    if "accuracy_converted" in evaluation and "speech_eval" in str(evaluation.get("source")):
        result.update(conversion_accuracy=evaluation["accuracy_converted"], conversion_clips=evaluation["samples"])
    if truth:
        recall, false, errors = match_keywords(truth, events, TIMING_BAR)
        minutes = summary["audio_seconds"] / 60
        result.update(recall=recall, false_per_minute=len(false) / minutes, max_timing_error=max(errors, default=0.0),
                      truth=truth, words=len(truth))
    return result


def run_phrase_part(phrases, out, live, log):
    """The phrase bundle on the shipped sample of validation speakers' phrases (or the microphone): its word
    error rate and whole-phrase accuracy against what was said."""
    truth = None if live else json.loads((DEMO / "sample_phrases.json").read_text())["phrases"]
    summary, events = _listen(phrases, "sample_phrases.wav", out / "phrase_events.jsonl", live, log)
    result = {"summary": summary, "heard": [(e["detected_at"], e["text"]) for e in events]}
    if truth:
        result.update(score_phrases(truth, events), truth=[(p["end"], p["text"]) for p in truth])
    return result


def clip_accuracy(speech):
    """(accuracy, clips) of the speech bundle on the shipped labelled clips of test speakers (speech_clips.wav,
    one after another; speech_clips.json says where each starts and its label), each clip's window stepped
    through the streaming bundle from zero state, as `edgenn convert --eval` scores it."""
    from edgenn.devices.speech import load_audio_model
    from edgenn.streaming import run_steps

    audio = load_audio_model(speech)
    clips = json.loads((DEMO / "speech_clips.json").read_text())["clips"]
    samples = read_wav(DEMO / "speech_clips.wav")[0]  # 16 kHz, as the model hears
    frontend = FrontEnd(audio.frontend)
    right = 0
    for clip in clips:
        features = frontend.features(samples[clip["start"]:clip["start"] + clip["samples"]])
        window = np.zeros((audio.window_frames, frontend.n_features), np.float32)  # short clips: zero frames after
        window[:min(len(features), audio.window_frames)] = features[:audio.window_frames]
        scores = run_steps(audio.model, window, audio.streaming)
        right += audio.labels[int(np.argmax(scores))] == clip["label"]
    return right / len(clips), len(clips)


def verdicts(camera, microphone, phrases):
    """(what, measured, bar, passed) rows for the figures that have a bar."""
    rows = []
    if "map" in camera:
        rows.append(("detector mAP@0.5 vs ground truth", f"{camera['map']:.3f}", f"≥ {DETECTOR_BAR}",
                     camera["map"] >= DETECTOR_BAR))
    rows.append((f"speech 12-class accuracy, {microphone['clips']} real clips of unseen speakers",
                 f"{microphone['clip_accuracy']:.3f}", f"≥ {SPEECH_ACCURACY_BAR}",
                 microphone["clip_accuracy"] >= SPEECH_ACCURACY_BAR))
    if "recall" in microphone:
        rows += [("keyword recall", f"{microphone['recall']:.3f} of {microphone['words']}", f"≥ {RECALL_BAR}",
                  microphone["recall"] >= RECALL_BAR),
                 ("false keyword events per minute", f"{microphone['false_per_minute']:.2f}",
                  f"≤ {FALSE_PER_MINUTE_BAR}", microphone["false_per_minute"] <= FALSE_PER_MINUTE_BAR)]
    if "word_error_rate" in phrases:
        rows.append((f"phrase word error rate, {phrases['phrases']} phrases of unseen speakers",
                     f"{phrases['word_error_rate']:.3f} (phrases right {phrases['phrase_accuracy']:.2f})",
                     f"≤ {PHRASE_WER_BAR}", phrases["word_error_rate"] <= PHRASE_WER_BAR))
    return rows


def write_report(path, camera, microphone, phrases, stills, seconds):
    rows = verdicts(camera, microphone, phrases)
    cam, mic = camera["summary"], microphone["summary"]
    table = "".join(f"<tr><td>{html.escape(w)}</td><td>{m}</td><td>{b}</td><td>{'pass' if ok else 'FAIL'}</td></tr>"
                    for w, m, b, ok in rows)
    pictures = "".join(f'<img src="data:image/jpeg;base64,{base64.b64encode(s).decode()}" width="320">' for s in stills)
    heard = ", ".join(f"{t:.1f}s {html.escape(label)}" for t, label in microphone["events"])
    expected = ", ".join(f"{t:.1f}s {html.escape(w)}" for t, w in microphone.get("truth", []))
    accuracy = (f"; 12-class accuracy {100 * microphone['clip_accuracy']:.1f} % on {microphone['clips']} real clips "
                "of speakers it never heard")
    if "conversion_accuracy" in microphone:
        accuracy += (f" ({100 * microphone['conversion_accuracy']:.1f} % on {microphone['conversion_clips']} when "
                     "converted)")
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>edgenn demo</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}</style>
</head><body><h1>edgenn demo</h1><p>Finished in {seconds:.0f} s.</p>
<h2>Against ground truth</h2><table><tr><th>figure</th><th>measured</th><th>bar</th><th></th></tr>{table}</table>
<h2>Camera: demo detector (int8)</h2><p>{cam['frames']} frames at {cam['fps']:.1f} FPS, p50 latency
{cam['latency_ms']['p50']:.1f} ms; annotated video: <a href="{camera['video']}">{camera['video']}</a></p>{pictures}
<h2>Microphone: demo speech commands (int8)</h2><p>{mic['audio_seconds']:.0f} s of real speakers' words over
room noise (Speech Commands dataset by Pete Warden / Google, CC BY 4.0), real-time factor
{mic['real_time_factor']:.3f}{accuracy}</p><p><b>Heard:</b> {heard or 'nothing'}</p><p><b>Spoken:</b> {expected or 'live input'}</p>
<h2>Microphone: demo phrases (int8, CTC)</h2><p>{phrases['summary']['audio_seconds']:.0f} s of phrases by
speakers it never heard, real-time factor {phrases['summary']['real_time_factor']:.3f}</p>
<p><b>Heard:</b> {html.escape(" | ".join(text for _, text in phrases["heard"])) or 'nothing'}</p>
<p><b>Spoken:</b> {html.escape(" | ".join(text for _, text in phrases.get("truth", []))) or 'live input'}</p>
</body></html>""")


def run_demo(out="edgenn-demo", calibration=None, live=False, convert=False, log=print):
    """Run the demo; returns a dict of results. Writes OUT/report.html and OUT/annotated.mp4.

    convert (implied by calibration): first rebuild the bundles from the Keras models into OUT (TensorFlow);
    calibration: DIR with images/ and speech/ (default OUT/calibration)."""
    started = time.monotonic()
    out = Path(out)
    if convert or calibration:
        calibration = demo_calibration(calibration or out / "calibration")
    _make_out(out)
    detector, speech, phrase_bundle = convert_demo_models(out, calibration, log) if calibration else shipped_bundles()
    camera, stills = run_camera_part(detector, out, live, log)
    microphone = run_listen_part(speech, out, live, log)
    phrases = run_phrase_part(phrase_bundle, out, live, log)
    seconds = time.monotonic() - started
    write_report(out / "report.html", camera, microphone, phrases, stills, seconds)
    return {"camera": camera, "microphone": microphone, "phrases": phrases,
            "verdicts": verdicts(camera, microphone, phrases), "bundles": [str(detector), str(speech), str(phrase_bundle)],
            "report": str(out / "report.html"), "seconds": seconds}
