"""edgenn camera on real models and real videos: fixture expectations through the video path, MQTT
through a real Mosquitto, the web preview in headless Chromium, and the fault paths."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from conftest import chromium_driver, free_port, mqtt_subscriber, run_cli, wait_until
from edgenn.devices import camera, sources
from edgenn.devices.preview import PreviewServer, PreviewState
from edgenn.errors import EdgennError

SSD = "models/tflite_support/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite"
YOLO = "models/agpl_ultralytics/yolov8n_full_integer_quant.tflite"
MOBILENET = "models/coral/mobilenet_v2_1.0_224_quant.tflite"


def write_video(path, images, fps=10, repeat=1, size=None):
    """A video of BGR images (each shown `repeat` times), all resized to size or the first's size: mp4v (lossy),
    or FFV1 (lossless) for a .mkv path."""
    size = size or images[0].shape[1::-1]
    codec = "FFV1" if path.suffix == ".mkv" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
    assert writer.isOpened()
    for image in images:
        for _ in range(repeat):
            writer.write(cv2.resize(image, size) if image.shape[1::-1] != tuple(size) else image)
    writer.release()
    return path


@pytest.fixture(scope="session")
def videos(fixtures_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    read = lambda name: cv2.imread(str(fixtures_dir / "images" / name))  # noqa: E731
    dogs, cats_dogs = read("tflite_support/dogs.jpg"), read("tflite_support/cats_and_dogs.jpg")
    # the documented photos losslessly: their 4th and 5th SSD detections are one score step apart (0.49, 0.50),
    # which mp4v's compression noise can swap
    return {"dogs": write_video(root / "dogs.mkv", [dogs], repeat=3),
            "cats_and_dogs": write_video(root / "cats_and_dogs.mkv", [cats_dogs], repeat=3),
            "bus": write_video(root / "bus.mp4", [read("agpl_ultralytics/bus.jpg")], repeat=2),
            "cat": write_video(root / "cat.mp4", [read("coral/cat.bmp")], repeat=3),
            "mixed": write_video(root / "mixed.mp4", [dogs, read("coral/cat.bmp")] * 30, fps=10, size=(320, 240))}


@pytest.fixture(scope="session")
def detection_expectations(fixtures_dir):
    doc = json.loads((fixtures_dir / "expected" / "documented_expectations.json").read_text())
    found = {}
    for entry in doc["object_detection"]:
        name = entry["input"].rsplit("/", 1)[-1].split(".")[0]
        key = next((k for k in entry if k.startswith("expected_max_results_")), None)
        if key:
            found[name] = (int(key.rsplit("_", 1)[1]), entry[key])
    return found


def read_events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("name", ["dogs", "cats_and_dogs"])
def test_ssd_fixture_through_video_and_cli(name, fixtures_dir, videos, detection_expectations, tmp_path):
    max_results, expected = detection_expectations[name]
    events = tmp_path / "events.jsonl"
    result = run_cli(["camera", fixtures_dir / SSD, "--source", videos[name], "--max-detections", max_results,
                      "--threshold", 0.3, "--events", events, "--json"])
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 3 and summary["dropped"] == 0 and summary["stopped_by"] == "end of source"
    found = read_events(events)
    assert {e["frame"] for e in found} == {0, 1, 2}
    for event in found:
        assert set(event) >= {"time", "source", "model", "kind", "label", "score", "box", "frame", "latency_ms"}
        assert event["source"] == "camera" and event["kind"] == "detection"
    for frame in range(3):
        got = sorted((e for e in found if e["frame"] == frame), key=lambda e: -e["score"])
        assert [e["label"] for e in got] == [x["class_name"] for x in sorted(expected, key=lambda x: -x["score"])]
        for event, want in zip(got, sorted(expected, key=lambda x: -x["score"])):
            assert abs(event["score"] - want["score"]) <= 0.05, (event, want)


def run(fixtures_dir, model, source, **options):
    """run_camera in-process; returns (summary, [(frame index, results)], labeller)."""
    seen = []
    task_box = {}
    summary = camera.run_camera(fixtures_dir / model, str(source), on_result=lambda f, r: seen.append((f.index, r)),
                                on_start=lambda runner: task_box.setdefault("task", runner.task), **options)
    return summary, seen, task_box["task"].label


def test_yolov8_finds_four_people_and_a_bus(fixtures_dir, videos):
    summary, seen, label = run(fixtures_dir, YOLO, videos["bus"], threshold=0.25)
    assert summary["frames"] == 2 and not summary["error"]
    for _, results in seen:
        assert Counter(label(r.label_id) for r in results) == {"person": 4, "bus": 1}


def test_coral_classifier_sees_egyptian_cat(fixtures_dir, videos):
    summary, seen, label = run(fixtures_dir, MOBILENET, videos["cat"], top_k=3)
    assert summary["frames"] == 3
    for _, results in seen:
        assert label(results[0].label_id) == "Egyptian cat" and results[0].score > 0.7


class FakePicamera2:
    """A stand-in with Picamera2's API, serving one picture; fails after `fail_after` captures."""
    fail_after = None
    opened = 0

    def __init__(self, camera_num=0):
        FakePicamera2.opened += 1
        if FakePicamera2.opened > 1 and FakePicamera2.fail_after is not None:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.config, self.started, self.captures = None, False, 0

    def create_video_configuration(self, main=None, controls=None):
        return {"main": dict(main), "controls": dict(controls or {})}

    def configure(self, config):
        self.config = config

    def start(self):
        self.started = True

    def capture_array(self, name="main"):
        assert self.started and name == "main"
        self.captures += 1
        if self.fail_after is not None and self.captures > self.fail_after:
            raise RuntimeError("Device or resource busy")
        time.sleep(0.02)
        width, height = self.config["main"]["size"]
        return cv2.resize(self.picture, (width, height))  # "RGB888" = B, G, R bytes

    def stop(self):
        self.started = False

    def close(self):
        pass


@pytest.fixture
def fake_picamera2(fixtures_dir, monkeypatch):
    FakePicamera2.picture = cv2.imread(str(fixtures_dir / "images" / "coral" / "cat.bmp"))
    FakePicamera2.opened, FakePicamera2.fail_after = 0, None
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    return FakePicamera2


def test_picamera2_source(fixtures_dir, fake_picamera2):
    summary, seen, label = run(fixtures_dir, MOBILENET, "picamera2", size=(320, 240), fps=30, max_frames=4)
    assert summary["frames"] == 4 and summary["stopped_by"] == "max frames reached"
    assert all(label(results[0].label_id) == "Egyptian cat" for _, results in seen)


def test_a_raspberry_pi_defaults_to_its_csi_camera(fixtures_dir, fake_picamera2, monkeypatch):
    from edgenn.flash import profiles
    monkeypatch.setenv("EDGENN_PROFILE", "rpi4")
    summary = camera.run_camera(fixtures_dir / MOBILENET, max_frames=2, log=lambda message: None)
    assert summary["source"] == "picamera2:0" and summary["frames"] == 2
    assert camera.machine_cores(profiles.get("rpi4")) == 4 and summary["threads"]["threads"] in (4, 3)
    monkeypatch.setitem(sys.modules, "picamera2", None)  # a Pi without Picamera2: USB camera 0, and why
    logs = []
    assert sources.default_source(profiles.get("rpi4"), logs.append) == "0"
    assert len(logs) == 1 and "python3-picamera2" in logs[0] and "--system-site-packages" in logs[0]
    assert sources.default_source(None, logs.append) == "0" and len(logs) == 1


def test_duration_ends_a_live_run(fixtures_dir, fake_picamera2):
    summary, seen, _ = run(fixtures_dir, MOBILENET, "picamera2", duration=1.5)
    assert summary["stopped_by"] == "duration reached" and 1.4 <= summary["seconds"] < 5
    assert summary["frames"] == len(seen) >= 1 and summary["latency_ms"]["p90"] >= summary["latency_ms"]["p50"] > 0
    assert summary["frame_age_ms"]["mean"] > 0


def test_lost_picamera2_reconnects_then_gives_up(fixtures_dir, fake_picamera2):
    fake_picamera2.fail_after = 3
    logs = []
    summary, seen, _ = run(fixtures_dir, MOBILENET, "picamera2", reconnects=2, backoff=0.05, log=logs.append)
    assert summary["frames"] >= 1 and summary["reconnects"] == 2
    assert "did not come back after 2 reconnect attempts" in summary["error"]
    assert any("reconnect attempt 2/2 failed" in line for line in logs)


class FrameSourceStub(sources.Source):
    """A live source delivering numbered frames as fast as it can."""
    live = True
    name = "stub"

    def __init__(self, n):
        self.n, self.i = n, 0

    def read(self):
        if self.i >= self.n:
            time.sleep(0.01)
            raise sources.SourceLost("done")
        self.i += 1
        time.sleep(0.001)
        return np.full((4, 4, 3), self.i % 255, np.uint8)


def test_capture_keeps_newest_frame_and_counts_drops():
    capture = sources.Capture(FrameSourceStub(200), reconnects=0).start()
    taken = []
    while (frame := capture.take(timeout=2)) is not None:
        taken.append(frame)
        time.sleep(0.02)  # a slow consumer
    capture.stop()
    indices = [f.index for f in taken]
    assert indices == sorted(indices) and indices[-1] == 199  # newest first, never an old one
    assert capture.dropped == 200 - len(taken) and capture.dropped > 100
    assert all(b.stamp >= a.stamp for a, b in zip(taken, taken[1:]))


def test_video_files_decode_on_one_thread(videos):
    """FFmpeg's own decoding threads would compete with the model's for the cores."""
    source = sources.open_source(str(videos["mixed"]))
    source.open()
    try:
        assert source.capture.get(cv2.CAP_PROP_N_THREADS) == sources.DECODER_THREADS == 1
        assert source.read() is not None
    finally:
        source.close()


def test_image_folder_and_glob_sources(tmp_path, fixtures_dir):
    for i, name in enumerate(["coral/cat.bmp", "coral/parrot.jpg"]):
        shutil.copy(fixtures_dir / "images" / name, tmp_path / f"{i}_{name.split('/')[1]}")
    for spec in (tmp_path, tmp_path / "*.jpg"):
        source = sources.open_source(str(spec))
        capture = sources.Capture(source).start()
        frames = []
        while (frame := capture.take(timeout=2)) is not None:
            frames.append(frame)
        capture.stop()
        assert len(frames) == (2 if spec == tmp_path else 1) and capture.dropped == 0


def test_events_reach_a_real_mosquitto_broker(fixtures_dir, videos, mosquitto):
    with mqtt_subscriber(mosquitto, "edgenn/camera") as received:
        summary, _, _ = run(fixtures_dir, SSD, videos["dogs"], max_detections=2,
                            events=[f"mqtt://127.0.0.1:{mosquitto}/edgenn/camera"])
        wait_until(lambda: len(received) >= 6)
    assert summary["frames"] == 3
    assert len(received) == 6 and {e["label"] for e in received} == {"dog"}
    assert {e["frame"] for e in received} == {0, 1, 2} and all(e["source"] == "camera" for e in received)


def test_preview_page_in_headless_chromium(fixtures_dir, videos):
    logs, runners, result = [], [], {}
    port = free_port()

    def work():
        result["summary"] = camera.run_camera(
            fixtures_dir / SSD, str(videos["mixed"]), realtime=True, fps=5, preview=f"127.0.0.1:{port}",
            log=logs.append, on_start=runners.append, duration=60)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    driver = chromium_driver()
    try:
        deadline = time.time() + 30
        while not runners and time.time() < deadline:
            time.sleep(0.1)
        assert any(f"http://127.0.0.1:{port}/" in line for line in logs)
        driver.get(f"http://127.0.0.1:{port}/")
        image = driver.find_element("id", "stream")
        shots = []
        while len(set(shots)) < 2 and time.time() < deadline:
            if driver.execute_script("return arguments[0].naturalWidth", image) > 0:
                shots.append(image.screenshot_as_png)
            time.sleep(0.5)
        assert len(set(shots)) >= 2, "the streamed frame never changed"
        # The page re-renders its event list as events arrive: read it in one script call, not via
        # element handles that go stale between calls.
        read_events = "return Array.from(document.querySelectorAll('li.event')).map(e => e.textContent).join(' ')"
        while "dog" not in driver.execute_script(read_events) and time.time() < deadline:
            time.sleep(0.2)
        assert "dog" in driver.execute_script(read_events)
        assert "FPS" in driver.find_element("id", "stats").text
    finally:
        driver.quit()
        if runners:
            runners[0].stop("test done")
        thread.join(30)
    assert result["summary"]["frames"] > 2 and result["summary"]["stopped_by"] == "test done"


def test_preview_off_localhost_needs_a_token(fixtures_dir, videos):
    with pytest.raises(EdgennError, match="preview-token"):
        PreviewServer(PreviewState("t"), "0.0.0.0", free_port())
    result = run_cli(["camera", fixtures_dir / SSD, "--source", videos["dogs"], "--preview", "0.0.0.0:8765"])
    assert result.returncode == 1 and "--preview-token" in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("edgenn: error")]) == 1
    server = PreviewServer(PreviewState("t"), "0.0.0.0", free_port(), token="s3cret").start()
    try:
        port = server.server.server_address[1]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/events.json", timeout=5)
        assert refused.value.code == 403
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/events.json?token=s3cret", timeout=5) as ok:
            assert json.loads(ok.read())["title"] == "t"
    finally:
        server.close()


class MjpegServer:
    """An HTTP MJPEG camera that serves `frames` frames, then vanishes (the port closes)."""

    def __init__(self, image, frames):
        jpeg = cv2.imencode(".jpg", image)[1].tobytes()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f")
                self.end_headers()
                for _ in range(frames):
                    self.wfile.write(b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                     + jpeg + b"\r\n")
                    time.sleep(0.05)
                server.shutdown_request(self.request)
                threading.Thread(target=lambda: (server.shutdown(), server.server_close())).start()

        server = self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
        threading.Thread(target=server.serve_forever, daemon=True).start()


def test_stream_that_vanishes_reconnects_then_exits_cleanly(fixtures_dir):
    camera_server = MjpegServer(cv2.imread(str(fixtures_dir / "images" / "coral" / "cat.bmp")), frames=20)
    result = run_cli(["camera", fixtures_dir / MOBILENET, "--source", camera_server.url, "--reconnects", 2,
                      "--json"], timeout=120)
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["frames"] >= 1 and summary["reconnects"] == 2
    assert "reconnect attempt 2/2 failed" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edgenn: error: source http://")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signal_number, reason", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")])
def test_signal_while_recording_leaves_a_playable_file(signal_number, reason, fixtures_dir, videos, tmp_path):
    record, events = tmp_path / "annotated.mp4", tmp_path / "events.jsonl"
    exe = os.path.join(os.path.dirname(sys.executable), "edgenn")
    process = subprocess.Popen([exe, "camera", str(fixtures_dir / SSD), "--source", str(videos["mixed"]),
                                "--realtime", "--fps", "5", "--record", str(record), "--events", str(events),
                                "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (events.exists() and len(events.read_text().splitlines()) >= 6):
            time.sleep(0.1)
        process.send_signal(signal_number)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped_by"] == reason and summary["recorded"]["frames"] >= 3
    video = cv2.VideoCapture(str(record))
    count = 0
    while video.read()[0]:
        count += 1
    assert video.get(cv2.CAP_PROP_FRAME_WIDTH) == 320
    assert count == summary["recorded"]["frames"]


@pytest.mark.parametrize("args, message", [
    (["models/tflite_micro/micro_speech_quantized.tflite"], "not an image"),
    ([SSD, "--decoder", "centernet"], "unknown decoder 'centernet'"),
    ([SSD, "--display"], "--display"),
    ([SSD, "--source", "/nonexistent/clip.mp4"], "no such file"),
    ([SSD, "--source", "7"], "cannot open video source 7"),
])
def test_bad_input_is_one_clear_line(args, message, fixtures_dir, videos, monkeypatch):
    model, *rest = args
    source = [] if "--source" in rest else ["--source", videos["dogs"]]
    result = run_cli(["camera", fixtures_dir / model, *source, *rest], env={**os.environ, "DISPLAY": ""})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("INFO:")]
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("edgenn: error:"), result.stderr
