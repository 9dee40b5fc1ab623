"""The microphone runner: an audio source through the speech pipeline to events, with a summary.

    summary = run_listen("speech_commands.tflite", source="default", events="-")

The source's callback or reader thread fills a bounded queue; this thread takes blocks, runs the
Listener and emits events in the shared schema (edgenn.events). SIGINT / SIGTERM, --duration or
the end of a file end the run with a summary: audio seconds, events, overflows, real-time factor
(processing time / audio time).
"""

import sys
import time
from collections import Counter

from edgenn.errors import EdgennError
from edgenn.events import make_event, make_sink
from edgenn.flash import profiles
from edgenn.devices.audio_sources import END, open_audio_source
from edgenn.devices.run_control import StopOnSignals, preferred_runtime, resolve_model
from edgenn.devices.phrase_listen import PhraseListener
from edgenn.devices.preview import PreviewServer, PreviewState, parse_address
from edgenn.devices.speech import Listener, load_audio_model
from edgenn.phrases import Grammar

EVENT_KIND = {"keywords": "keyword", "audio_classify": "audio_class", "phrases": "phrase"}


def run_listen(model, source="default", *, events=None, mode=None, threshold=None, thresholds=None, hop_ms=None,
               smoothing_ms=None, refractory_ms=None, copies=4, realtime=False, duration=None, labels=None,
               frontend=None, task=None, input_rate=None, device_rate=None, runtime=None, threads=None,
               queue_blocks=None, grammar=None, pause_ms=None, preview=None, preview_token=None, on_detection=None,
               on_start=None, log=None):
    """Run MODEL on SOURCE ('default', a device index or name, FILE.wav, '-' for raw PCM on stdin).

    events: a sink spec or a list ('-', FILE, mqtt://HOST[:PORT]/TOPIC). A phrase model (task phrases)
    reports phrases, matched to `grammar` (a file of allowed phrases) when given, ending after `pause_ms` of
    quiet. preview: HOST:PORT of a web page showing the events as they come (devices/preview.py). Returns the
    summary dict; its "error" is set when the source failed mid-run."""
    log = log or (lambda message: print(f"edgenn: {message}", file=sys.stderr))
    audio = load_audio_model(resolve_model(model), labels=labels, frontend=frontend, task=task,
                             runtime=preferred_runtime(runtime, profiles.detect()), threads=threads)
    if audio.task == "phrases":
        listener = PhraseListener(audio, mode, grammar and Grammar.load(grammar, audio.settings["vocabulary"]),
                                  pause_ms, threshold)
    elif grammar or pause_ms:
        raise EdgennError(f"--grammar and --pause-ms are for phrase models; {audio.name} is a {audio.task} model")
    else:
        listener = Listener(audio, mode, threshold, thresholds, hop_ms, smoothing_ms, refractory_ms, copies)
    options = {"queue_blocks": queue_blocks} if queue_blocks else {}
    src = open_audio_source(source, audio.rate, realtime=realtime, input_rate=input_rate, device_rate=device_rate,
                            **options)
    address = parse_address(preview) if preview else None
    sink = make_sink(events) if events else None
    state = PreviewState(f"edgenn listen: {audio.name} ({audio.task})") if address else None
    server = None
    stop = {}
    counts = Counter()
    busy = audio_samples = 0
    last = taken = None
    started = time.monotonic()

    def emit(block, taken, detections):
        for found in detections:
            if src.live:  # the capture clock: when the word started, when its last sample used was captured
                when = block.time + (found.start * audio.rate - block.offset) / audio.rate
                heard = block.time + (found.end_sample - block.offset) / audio.rate
            else:  # recorded audio is read ahead of any clock: latency counts from when the runner took the block
                when, heard = None, taken
            common = dict(when=when, latency_ms=1000 * (time.time() - heard), detected_at=round(found.detected, 3),
                          mode=listener.mode)
            if audio.task == "phrases":
                event = phrase_event(audio.name, found, **common)
            else:
                event = make_event("microphone", audio.name, EVENT_KIND[audio.task], found.label, found.score,
                                   stream_time=round(found.start, 3), **common)
            counts[event["label"]] += 1
            if sink:
                sink.emit(event)
            if state:
                state.publish_events([event], {"audio_seconds": round(audio_samples / audio.rate, 1),
                                               "events": sum(counts.values())})
            if on_detection:
                on_detection(event)
    try:
        if address:
            server = PreviewServer(state, *address, token=preview_token).start()
            log(f"preview at {server.url}")
        src.start()
        log(f"listening to {src.describe()} with {audio.name} ({audio.task}, {listener.mode} mode)")
        if on_start:
            on_start(stop)
        with StopOnSignals(lambda reason: stop.__setitem__("reason", reason), lambda: bool(stop.get("reason"))):
            while not stop.get("reason"):
                if duration and time.monotonic() - started >= duration:
                    stop["reason"] = "duration reached"
                    break
                block = src.read(timeout=0.1)
                if block is END:
                    stop["reason"] = "end of source" if not src.error else "source failed"
                    if not src.error and last:  # a word right at the end still counts
                        begin = time.perf_counter()
                        detections = listener.flush()
                        busy += time.perf_counter() - begin
                        emit(last, taken, detections)
                    break
                if block is None:
                    continue
                taken = time.time()
                begin = time.perf_counter()
                detections = listener.push(block.samples)
                busy += time.perf_counter() - begin
                audio_samples = block.offset + len(block.samples)
                last = block
                emit(block, taken, detections)
    finally:
        src.stop()
        if sink:
            sink.close()
        if server:
            server.close()
    seconds = audio_samples / audio.rate
    return {"model": audio.name, "task": audio.task, "mode": listener.mode, "source": src.describe(),
            "audio_seconds": round(seconds, 3), "wall_seconds": round(time.monotonic() - started, 3),
            "processing_seconds": round(busy, 3), "real_time_factor": round(busy / seconds, 4) if seconds else 0.0,
            "events": sum(counts.values()), "labels": dict(counts), "overflows": src.overflows,
            "lost_seconds": round(src.lost_samples / src.input_rate, 3), "stopped_by": stop.get("reason"),
            "error": src.error}


def phrase_event(model, phrase, **extra):
    """The event of a heard phrase; a grammar miss is kind "phrase" with text "" and matched false. The score
    is what the model heard (word_scores only when those are the words reported)."""
    fields = {"text": phrase.text, "words": phrase.words,
              "word_scores": None if phrase.heard else [round(s, 4) for s in phrase.scores],
              "start": round(phrase.start, 3), "end": round(phrase.end, 3)}
    if phrase.grammar:
        fields.update(matched=bool(phrase.words), heard=" ".join(phrase.heard) if phrase.heard else phrase.text)
    return make_event("microphone", model, EVENT_KIND["phrases"], phrase.text or "_unmatched_", phrase.score, **fields,
                      **extra)


def check_thresholds(items):
    """{label: threshold} from LABEL=X strings; X is a score, so 0 to 1."""
    result = {}
    for item in items or ():
        label, sep, value = item.rpartition("=")
        try:
            result[label] = float(value)
        except ValueError:
            label = ""
        if not sep or not label:
            raise EdgennError(f"--keyword-threshold {item!r}: expected LABEL=SCORE, e.g. yes=0.8")
        if not 0 <= result[label] <= 1:
            raise EdgennError(f"--keyword-threshold {item!r}: scores run from 0 to 1; give a threshold in that "
                              f"range, e.g. {label}=0.8")
    return result
