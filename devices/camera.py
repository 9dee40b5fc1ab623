"""The camera runner: frames from a source through a vision model to overlay, recording, preview,
display and events.

    capture thread   reads the source, keeps the newest frame (devices.sources.Capture)
    prepare thread   resizes/normalises the next frame while the model runs the current one
    inference thread runs the model (LiteRT releases the GIL while it invokes)
    main thread      decodes, draws, records, serves the preview, emits events, shows the window

That is the model running beside the pipeline. With every core the model runs alone instead: the
inference thread prepares each frame between invokes and handles its results itself (the main thread
still does when there is a window to draw in), as a serial loop does. Which of the two, and how many
threads, is measured on the first frames (devices/thread_choice.py).

For a live source the prepare thread takes its frame just in time, when the running invoke is
about to finish, so the frame the model sees is as fresh as the source allows. A recorded source is
read a few frames ahead and its next frame prepared while the model runs, so no frame waits on them.
"""

import os
import queue
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field

from edgenn.errors import EdgennError

try:
    import cv2
except ImportError as exc:  # no OpenCV here, or a GUI build missing its system libraries (libGL)
    raise EdgennError(f"edgenn camera needs OpenCV, which does not import here ({exc}); "
                      "pip install opencv-python-headless (or pip install 'edgenn[device]')") from None
import numpy as np

from edgenn.bundle import load_bytes, load_labels_file, read_labels, read_manifest
from edgenn.events import make_event, make_sink
from edgenn.flash import profiles
from edgenn.modelfile import read_contents
from edgenn.runtime import open_model
from edgenn.vision import VisionTask, class_count
from edgenn.devices import overlay
from edgenn.devices.preview import PreviewServer, PreviewState, parse_address
from edgenn.devices.recorder import Recorder, check_path
from edgenn.devices.run_control import StopOnSignals, preferred_runtime, put_until_stopped, resolve_model
from edgenn.devices.sources import Capture, default_source, open_source
from edgenn.devices.thread_choice import Setting, ThreadChoice, candidates, describe

AUDIO_TASKS = ("keywords", "audio_classify")
END = object()  # marks the end of the frames in the stage queues
WINDOW = "edgenn camera"


def open_task(model, labels=None, decoder=None, threshold=None, max_detections=None, top_k=None,
              iou_threshold=None, runtime=None, threads=None):
    """(VisionTask, model name) for a model file: manifest first, then options, then guesses."""
    path = resolve_model(model)
    manifest = read_manifest(path)
    if manifest and manifest["task"] in AUDIO_TASKS:
        raise EdgennError(f"{path} is an audio model (task {manifest['task']}), not an image model; "
                          f"run it with `edgenn listen {model}`")
    label_list = load_labels_file(labels) if labels else read_labels(path)
    vision_model = open_model(path, runtime=runtime, threads=threads)
    task = VisionTask.create(vision_model, manifest=manifest, labels=label_list, decoder=decoder,
                             threshold=threshold, max_detections=max_detections, top_k=top_k,
                             iou_threshold=iou_threshold)
    classes = class_count(task.decoder, vision_model)
    if labels and classes is not None and len(label_list) != classes:
        raise EdgennError(f"--labels {labels}: {len(label_list)} labels for the {classes} classes {path.name} "
                          "outputs; give the labels file made for this model (one line per class)")
    name = (manifest or {}).get("name") or path.stem
    return task, name


def machine_cores(board=None):
    """Cores the model may use: the board profile's big cores, else the ones this process may run on."""
    if board is not None:
        return board.threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2


def open_thread_candidates(task, path, runtime, settings, why):
    """ThreadChoice over `task`'s model (opened from `path` with settings[0]'s threads) and the same file for the other
    settings, each invoked once first: XNNPACK packs its weights on the first invoke, not to be timed."""
    models = {settings[0]: task.model}
    for setting in settings[1:]:  # the same file, already probed with the first
        models[setting] = open_model(path, runtime=runtime, threads=setting.threads, probe=False)
    for candidate in models.values():
        tensor = candidate.inputs[0]
        candidate.set_input(0, np.zeros(tensor.shape, tensor.dtype))
        candidate.invoke()
    return ThreadChoice(models, why)


def check_display():
    """Refuse --display early when OpenCV was built without a GUI or there is no screen."""
    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() == "NONE":
        raise EdgennError("--display needs OpenCV with a GUI, but this one is headless "
                          "(opencv-python-headless); pip install opencv-python instead, or use --preview")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgennError("--display needs a screen, but DISPLAY is not set; run on the desktop, "
                          "or use --preview 127.0.0.1:8080 / --record FILE")


def percentile(values, q):
    return float(np.percentile(values, q)) if values else 0.0


@dataclass
class Stats:
    """Per-frame timings, in seconds."""
    invoke: list = field(default_factory=list)
    prepare: list = field(default_factory=list)
    latency: list = field(default_factory=list)    # capture -> results decoded
    age: list = field(default_factory=list)        # capture -> invoke starts
    done: list = field(default_factory=list)       # monotonic time each frame's results were ready

    def recent(self, values, n=20):
        return statistics.median(values[-n:]) if values else 0.0

    def fps(self):
        if len(self.done) < 2:
            return 0.0
        return (len(self.done) - 1) / max(self.done[-1] - self.done[0], 1e-9)

    def live(self, dropped):
        return {"frames": len(self.done), "dropped": dropped, "fps": self.fps(),
                "latency_ms": 1000 * self.recent(self.latency), "invoke_ms": 1000 * self.recent(self.invoke)}


class Handoff:
    """One prepared frame passed from the prepare thread to the inference thread."""

    def __init__(self):
        self.item = None
        self.cond = threading.Condition()

    def put(self, item, stop):
        with self.cond:
            while self.item is not None and not stop.is_set():
                self.cond.wait(0.1)
            self.item = item
            self.cond.notify_all()

    def wait_empty(self, stop):
        with self.cond:
            while self.item is not None and not stop.is_set():
                self.cond.wait(0.1)

    def take(self, stop):
        with self.cond:
            while self.item is None and not stop.is_set():
                self.cond.wait(0.1)
            item, self.item = self.item, None
            self.cond.notify_all()
            return item

    def take_ready(self):
        """The item if one is waiting, else None (no waiting)."""
        with self.cond:
            item, self.item = self.item, None
            self.cond.notify_all()
            return item

    def busy(self):
        return self.item is not None


class CameraRunner:
    """Runs a VisionTask on a Capture until the source ends, a limit is reached or stop() is called."""

    def __init__(self, task, capture, model_name="model", sink=None, recorder=None, preview=None,
                 display=False, max_frames=None, duration=None, on_result=None, log=None, thread_choice=None):
        self.task, self.capture, self.model_name = task, capture, model_name
        self.thread_choice = thread_choice or ThreadChoice({Setting(None, False): task.model}, "given")
        self.overlapping = threading.Event()  # set while the prepare thread works beside the model
        self.prepare_idle = threading.Event()  # set while it holds no frame (the model runs alone)
        self.sink, self.recorder, self.preview, self.display = sink, recorder, preview, display
        self.max_frames, self.duration, self.on_result = max_frames, duration, on_result
        self.log = log or (lambda message: None)
        self.stats = Stats()
        self.stop_event = threading.Event()
        self.reason = None
        self.failure = None
        self.handoff = Handoff()
        self.results = queue.Queue(maxsize=2)
        self.busy_until = 0.0  # monotonic time the running invoke is expected to end

    def stop(self, reason):
        if self.reason is None:
            self.reason = reason
        self.stop_event.set()

    # --- prepare thread (while the model runs beside the pipeline)
    def _prepare_loop(self):
        stop = self.stop_event
        try:
            while not stop.is_set():
                if self.thread_choice.setting.serial:  # the inference thread prepares its own frames
                    self.prepare_idle.set()
                    self.overlapping.wait(0.1)
                    continue
                self.prepare_idle.clear()
                if self.thread_choice.setting.serial:  # switched meanwhile: go idle before taking a frame
                    continue
                if not self.capture.lossless:  # just in time: fresh frame when the model is nearly free
                    self.handoff.wait_empty(stop)
                    wait = self.busy_until - time.monotonic() - self.stats.recent(self.stats.prepare) - 0.002
                    if wait > 0:
                        stop.wait(wait)
                item = self._next_prepared()
                if item is None:
                    if self.capture.finished:
                        break
                    continue
                self.handoff.put(item, stop)
        except Exception as exc:
            self.failure = f"preparing a frame failed: {exc}"
        self.handoff.put(END, stop)
        self.prepare_idle.set()

    def _next_prepared(self):
        """(frame, input array, context) of the next frame, or None when none came within 0.5 s."""
        frame = self.capture.take(timeout=0.5)
        if frame is None:
            return None
        start = time.monotonic()
        array, context = self.task.prepare(frame.image, order="bgr")
        self.stats.prepare.append(time.monotonic() - start)
        return frame, array, context

    # --- inference thread
    def _next_item(self):
        """The next prepared frame: from the prepare thread, or, when the model runs alone, prepared here
        between invokes as a serial loop would (a frame the prepare thread made before the switch first)."""
        if not self.thread_choice.setting.serial:
            self.overlapping.set()
            return self.handoff.take(self.stop_event)
        self.overlapping.clear()
        while not self.prepare_idle.is_set() and not self.stop_event.is_set():  # a frame it took comes first
            item = self.handoff.take_ready()
            if item is not None:
                return item
            self.prepare_idle.wait(0.001)
        item = self.handoff.take_ready()
        if item is not None:
            return item
        while not self.stop_event.is_set():
            item = self._next_prepared()
            if item is not None:
                return item
            if self.capture.finished:
                return END if not self.handoff.busy() else self.handoff.take(self.stop_event)
        return None

    def _infer_loop(self):
        stop = self.stop_event
        choice = self.thread_choice
        last_end = time.monotonic()
        try:
            while not stop.is_set():
                item = self._next_item()
                if item is END or item is None:
                    break
                frame, array, context = item
                model = choice.model
                start = time.monotonic()
                if not self.capture.lossless:
                    self.busy_until = start + self.stats.recent(self.stats.invoke)
                model.set_input(0, array)
                model.invoke()
                outputs = [model.output(i, raw=True) for i in range(len(model.outputs))]  # the decoder dequantizes
                end = time.monotonic()
                self.stats.invoke.append(end - start)
                self.stats.age.append(start - frame.stamp)
                if choice.setting.serial and not self.display:
                    self._wait_results_handled()  # every earlier frame first: results stay in order
                    try:
                        self._handle(frame, context, outputs)  # no hand-over: as a serial loop does
                    except Exception as exc:
                        self.failure = f"handling the results failed: {exc}"
                        break
                else:
                    self._put_result((frame, context, outputs))
                if choice.chosen is None:
                    choice.record(end - last_end, end - start)
                    if choice.chosen is not None:
                        self.task.model = choice.model
                        self.log(f"threads: {describe(choice.chosen)} ({choice.why})")
                last_end = end
        except Exception as exc:
            self.failure = f"running the model failed: {exc}"
        self.overlapping.set()
        self._put_result(END)

    def _wait_results_handled(self):
        with self.results.all_tasks_done:
            while self.results.unfinished_tasks and not self.stop_event.is_set():
                self.results.all_tasks_done.wait(0.05)

    def _put_result(self, item):
        put_until_stopped(self.results, item, self.stop_event)

    # --- results: main thread, or the inference thread when the model runs alone
    def _handle(self, frame, context, outputs):
        results = self.task.decode(outputs, context, raw=True)  # raw: the decoder dequantizes what it reads
        done = time.monotonic()
        latency = done - frame.stamp
        self.stats.latency.append(latency)
        self.stats.done.append(done)
        events = self._events(frame, results, latency) if self.sink or self.preview else []
        if self.sink:
            for event in events:
                self.sink.emit(event)
        if self.recorder or self.preview or self.display:
            live = self.stats.live(self.capture.dropped)
            status = f"{live['fps']:.1f} FPS  latency {live['latency_ms']:.0f} ms  invoke {live['invoke_ms']:.0f} ms"
            image = overlay.draw(frame.image.copy(), results, self.task.label, status)
            if self.recorder:
                self.recorder.write(image)
            if self.preview:
                self.preview.publish_frame(image)
                self.preview.publish_events(events, live)
            if self.display:
                cv2.imshow(WINDOW, image)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    self.stop("closed by the user")
        if self.on_result:
            self.on_result(frame, results)
        if self.max_frames and len(self.stats.done) >= self.max_frames:
            self.stop("max frames reached")

    def _events(self, frame, results, latency):
        kind = "classification" if self.task.task == "classify" else "detection"
        return [make_event("camera", self.model_name, kind, self.task.label(r.label_id), r.score,
                           frame=frame.index, latency_ms=1000 * latency, box=getattr(r, "box", None),
                           when=frame.time) for r in results]

    def run(self):
        """Run to the end; returns the summary dict."""
        threads = [threading.Thread(target=self._prepare_loop, name="prepare", daemon=True),
                   threading.Thread(target=self._infer_loop, name="inference", daemon=True)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            while not self.stop_event.is_set():
                if self.duration and time.monotonic() - started >= self.duration:
                    self.stop("duration reached")
                    break
                try:
                    item = self.results.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is END:
                    self.stop("end of source" if not self.capture.error else "source lost")
                    break
                self._handle(*item)
                self.results.task_done()
        finally:
            self.stop_event.set()
            for thread in threads:
                thread.join(timeout=10)
        return self.summary(time.monotonic() - started)

    def summary(self, seconds):
        s = self.stats
        error = self.failure or self.capture.error
        return {"model": self.model_name, "source": self.capture.source.name, "frames": len(s.done),
                "dropped": self.capture.dropped, "seconds": round(seconds, 3), "fps": round(s.fps(), 2),
                "latency_ms": {"p50": round(1000 * percentile(s.latency, 50), 2),
                               "p90": round(1000 * percentile(s.latency, 90), 2)},
                "invoke_ms": {"p50": round(1000 * percentile(s.invoke, 50), 2),
                              "p90": round(1000 * percentile(s.invoke, 90), 2)},
                "prepare_ms": {"p50": round(1000 * percentile(s.prepare, 50), 2)},
                "frame_age_ms": {"mean": round(1000 * float(np.mean(s.age)), 2) if s.age else 0.0},
                "threads": self.thread_choice.summary(),
                "reconnects": self.capture.reconnect_attempts, "stopped_by": self.reason, "error": error}


def run_camera(model, source=None, *, labels=None, decoder=None, threshold=None, max_detections=None,
               top_k=None, iou_threshold=None, size=None, fps=None, realtime=False, max_frames=None,
               duration=None, runtime=None, threads=None, display=False, record=None, preview=None,
               preview_token=None, events=None, reconnects=5, backoff=0.5, on_result=None, log=None,
               on_start=None):
    """Run MODEL on SOURCE (None: the board's camera, see default_source); returns the summary dict
    (its "error" is set when the source was lost or a stage failed). Threads and runtime not given
    come from the board's profile. events: a sink spec or a list of them ('-', FILE, mqtt://HOST[:PORT]/TOPIC).
    realtime=True (or fps) plays a recorded source at its frame rate (fps, else its own) dropping frames
    the model cannot keep up with, as a live camera would. threads: interpreter threads; None measures
    (devices/thread_choice.py) and the summary's "threads" says what was kept and why."""
    log = log or (lambda message: print(f"edgenn: {message}", file=sys.stderr))
    if display:
        check_display()
    if record:
        check_path(record)
    address = parse_address(preview) if preview else None
    board = profiles.detect()
    runtime = preferred_runtime(runtime, board)
    cores = machine_cores(board)
    path = resolve_model(model)
    if threads:
        settings, why = [Setting(threads, threads >= cores)], "--threads"
    elif read_contents(load_bytes(path), str(path)).needs_edgetpu:  # an Edge TPU opens once; CPU threads barely matter
        settings, why = [Setting(cores, True)], "an Edge TPU model: nothing to measure"
    else:
        settings, why = candidates(cores), None
    task, name = open_task(model, labels, decoder, threshold, max_detections, top_k, iou_threshold, runtime,
                           settings[0].threads)
    choice = open_thread_candidates(task, path, runtime, settings, why)
    src = open_source(default_source(board, log) if source is None else source, size=size, fps=fps)
    pace = (fps or "native") if (realtime or fps) and not src.live else None
    capture = Capture(src, pace_fps=pace, size=size, reconnects=reconnects, backoff=backoff, log=log)
    sink = recorder = server = None
    try:
        capture.start()
        state = PreviewState(f"edgenn camera: {name} on {src.name}") if address else None
        if address:
            server = PreviewServer(state, *address, token=preview_token).start()
            log(f"preview at {server.url}")
        sink = make_sink(events) if events else None
        recorder = Recorder(record, fps or src.fps or 15.0) if record else None
        runner = CameraRunner(task, capture, name, sink, recorder, state, display, max_frames, duration,
                              on_result, log, choice)
        if on_start:
            on_start(runner)
        with StopOnSignals(runner.stop, runner.stop_event.is_set):
            summary = runner.run()
        if recorder:
            summary["recorded"] = {"file": str(recorder.path), "frames": recorder.frames}
        return summary
    finally:
        capture.stop()
        for closable in (recorder, sink, server):
            if closable:
                closable.close()
        if display:
            cv2.destroyAllWindows()
