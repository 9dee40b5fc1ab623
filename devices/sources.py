"""Camera-like sources behind one interface, and the capture thread that reads them.

A source spec names one of: a camera index ("0") or V4L2 device ("/dev/video0"), "picamera2" (or
"picamera2:N", the CSI camera through Picamera2), a video file, an rtsp:// or http(s):// stream, an
image folder, or a glob ("frames/*.jpg"). Every source yields BGR uint8 frames (OpenCV's order).

Live sources (cameras, streams) are read as fast as they deliver; the capture thread keeps only the
newest frame, counts the ones nobody took, and reopens a lost source with backoff. Recorded sources
(files, folders) hand over every frame in order, unless paced at a frame rate ("realtime"), in which
case they behave like a live source; their end ends the run.
"""

import collections
import glob
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from edgenn.errors import EdgennError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
STREAM_TIMEOUT_MS = 5000
READ_AHEAD = 4  # frames a recorded source is decoded ahead of the model
DECODER_THREADS = 1  # FFmpeg threads decoding a recorded file


class SourceLost(Exception):
    """A live source stopped delivering frames."""


@dataclass
class Frame:
    index: int           # position in the capture order, from 0
    image: np.ndarray    # BGR uint8
    time: float          # wall-clock capture time (time.time())
    stamp: float         # monotonic capture time (time.monotonic()), for ages and latencies


class Source:
    """One camera-like source. open() may raise EdgennError; read() returns a BGR frame, None at the
    end of a recorded source, or raises SourceLost for a live one."""
    live = False
    name = "source"
    fps = None  # native frame rate when known

    def open(self):
        pass

    def read(self):
        raise NotImplementedError

    def close(self):
        pass


class OpenCVSource(Source):
    """cv2.VideoCapture: camera index, /dev/videoN, video file or network stream."""

    def __init__(self, target, live, size=None, fps=None):
        self.target, self.live, self.size, self.requested_fps = target, live, size, fps
        self.name = str(target)
        self.capture = None

    def open(self):
        params = []
        if isinstance(self.target, str) and self.target.startswith(STREAM_SCHEMES):
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                      STREAM_TIMEOUT_MS]
        threads = getattr(cv2, "CAP_PROP_N_THREADS", None)  # OpenCV >= 4.7
        # A recorded file decodes on one thread: FFmpeg's decoding threads would run beside the model's, and
        # one costs less CPU (0.69 vs 0.79 ms a 1200x600 mp4v frame here). Live streams keep FFmpeg's
        # threads: on a small Pi one may not keep up with the camera's frame rate.
        file_params = [threads, DECODER_THREADS] if threads is not None and not self.live else []
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # its warnings repeat our one line
        try:
            self.capture = cv2.VideoCapture(self.target, cv2.CAP_ANY, params + file_params)
            if not self.capture.isOpened() and file_params:  # a backend that refuses the thread count
                self.capture = cv2.VideoCapture(self.target, cv2.CAP_ANY, params)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self.capture.isOpened():
            self.capture.release()
            raise EdgennError(f"cannot open video source {self.name}; check that it exists and is not in use "
                              "(`edgenn doctor` lists cameras)")
        if self.live and self.size:  # requests; the camera picks the nearest mode it has
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        if self.live and self.requested_fps:
            self.capture.set(cv2.CAP_PROP_FPS, self.requested_fps)
        native = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = native if 0 < native < 1000 else None

    def read(self):
        ok, image = self.capture.read()
        if ok:
            return image
        if self.live:
            raise SourceLost(f"{self.name} stopped delivering frames")
        return None

    def close(self):
        if self.capture is not None:
            self.capture.release()
            self.capture = None


class ImageListSource(Source):
    """Still images read in name order: a folder, a glob or one image file."""

    def __init__(self, paths, name):
        self.paths, self.name, self.position = paths, name, 0

    def read(self):
        while self.position < len(self.paths):
            path = self.paths[self.position]
            self.position += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
        return None


class Picamera2Source(Source):
    """The Raspberry Pi CSI camera through Picamera2 (Raspberry Pi OS: apt install python3-picamera2).
    "RGB888" is libcamera's name for 24-bit pixels stored B, G, R: OpenCV's order."""
    live = True

    def __init__(self, camera_num=0, size=None, fps=None, picamera2_class=None):
        self.camera_num, self.size, self.fps = camera_num, size or (640, 480), fps
        self.picamera2_class = picamera2_class
        self.name = f"picamera2:{camera_num}"
        self.camera = None

    def open(self):
        camera_class = self.picamera2_class
        if camera_class is None:
            try:
                from picamera2 import Picamera2 as camera_class
            except ImportError:
                raise EdgennError("source picamera2 needs Picamera2, which ships with Raspberry Pi OS: "
                                  "sudo apt install python3-picamera2 (and create the venv with "
                                  "--system-site-packages)") from None
        try:
            self.camera = camera_class(self.camera_num)
            controls = {"FrameRate": float(self.fps)} if self.fps else {}
            config = self.camera.create_video_configuration(
                main={"size": tuple(self.size), "format": "RGB888"}, controls=controls)
            self.camera.configure(config)
            self.camera.start()
        except (RuntimeError, IndexError, OSError) as exc:
            self.close()
            raise EdgennError(f"cannot start the CSI camera {self.camera_num} ({exc}); check the ribbon cable "
                              "and `rpicam-hello --list-cameras`") from None

    def read(self):
        try:
            image = self.camera.capture_array("main")
        except (RuntimeError, OSError) as exc:
            raise SourceLost(f"{self.name}: {exc}") from None
        if image is None:
            raise SourceLost(f"{self.name} returned no frame")
        return image[:, :, :3] if image.ndim == 3 and image.shape[2] == 4 else image

    def close(self):
        if self.camera is not None:
            try:
                self.camera.stop()
                if hasattr(self.camera, "close"):
                    self.camera.close()
            except (RuntimeError, OSError):
                pass
            self.camera = None


def default_source(board, log=lambda message: None):
    """The camera a run opens when none is named: the CSI camera through Picamera2 on a board whose
    camera is that one and where Picamera2 imports (OpenCV gets no frames from it there), else camera 0."""
    if board is not None and board.camera == "picamera2":
        try:
            import picamera2  # noqa: F401
            return "picamera2"
        except ImportError:
            log("Picamera2 does not import here, so camera 0 (USB) is opened; for the CSI camera: "
                "sudo apt install python3-picamera2, in a venv made with --system-site-packages")
    return "0"


def open_source(spec, size=None, fps=None):
    """A Source (not yet opened) for a spec string; size=(width, height) and fps are requests."""
    spec = str(spec).strip()
    if spec.isdigit():
        return OpenCVSource(int(spec), live=True, size=size, fps=fps)
    if spec == "picamera2" or spec.startswith("picamera2:"):
        number = spec.partition(":")[2] or "0"
        if not number.isdigit():
            raise EdgennError(f"bad source '{spec}'; use picamera2 or picamera2:N")
        return Picamera2Source(int(number), size, fps)
    if spec.startswith("/dev/video"):
        if not os.path.exists(spec):
            raise EdgennError(f"no camera at {spec}; plug it in or list cameras with `edgenn doctor`")
        return OpenCVSource(spec, live=True, size=size, fps=fps)
    if spec.startswith(STREAM_SCHEMES):
        return OpenCVSource(spec, live=True, size=size, fps=fps)
    path = Path(spec)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise EdgennError(f"folder {spec} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return ImageListSource(images, spec)
    if any(c in spec for c in "*?["):
        images = sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise EdgennError(f"no images match {spec}")
        return ImageListSource(images, spec)
    if not path.exists():
        raise EdgennError(f"source {spec}: no such file, folder or camera; give a camera index (0), "
                          "/dev/videoN, picamera2, a video file, a folder, a glob or a URL")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageListSource([path], spec)
    return OpenCVSource(spec, live=False)


class Capture:
    """Reads a Source on its own thread and hands over frames.

    Lossless (recorded source, no pacing): every frame is handed over, decoded up to READ_AHEAD frames
    ahead so one slow decode does not stall the model. Otherwise only the newest frame is kept; one
    replaced before anybody took it counts as dropped.
    A live source that fails is reopened after 0.5, 1, 2 ... s (at most max_backoff) up to
    `reconnects` times in a row; then the capture ends with `error` set."""

    def __init__(self, source, pace_fps=None, size=None, reconnects=5, backoff=0.5, max_backoff=8.0, log=None):
        self.source, self.size, self.log = source, size, log or (lambda message: None)
        self.reconnects, self.backoff, self.max_backoff = reconnects, backoff, max_backoff
        self.pace_fps = pace_fps
        self.lossless = not source.live and not pace_fps
        self.dropped = 0
        self.captured = 0
        self.reconnect_attempts = 0
        self.error = None
        self.finished = False
        self._frames = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self):
        self.source.open()
        if self.pace_fps == "native":
            self.pace_fps = self.source.fps or 30.0
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.ident is not None:  # started: start() fails when the source cannot open
            self._thread.join(timeout=10)
        self.source.close()

    def take(self, timeout=None):
        """The oldest frame not yet taken (a live source keeps only its newest), waiting for one;
        None when the capture has ended."""
        with self._cond:
            self._cond.wait_for(lambda: self._frames or self.finished or self._stop.is_set(), timeout)
            if not self._frames:  # timed out, ended or stopped
                return None
            frame = self._frames.popleft()
            self._cond.notify_all()
        if self.lossless:  # time spent in the read-ahead is the reader being early, not the frame aging
            frame = replace(frame, time=time.time(), stamp=time.monotonic())
        return frame

    def _hand_over(self, frame):
        with self._cond:
            if not self.lossless and self._frames:
                self.dropped += len(self._frames)
                self._frames.clear()
            self._frames.append(frame)
            self._cond.notify_all()

    def _reopen(self, reason):
        """Reopen a lost live source with backoff; False when it stays lost."""
        self.log(f"{self.source.name}: {reason}; reconnecting")
        delay = self.backoff
        for attempt in range(1, self.reconnects + 1):
            self.source.close()
            if self._stop.wait(delay):
                return False
            self.reconnect_attempts += 1
            try:
                self.source.open()
                self.log(f"{self.source.name}: reconnected (attempt {attempt})")
                return True
            except EdgennError as exc:
                self.log(f"{self.source.name}: reconnect attempt {attempt}/{self.reconnects} failed ({exc})")
            delay = min(delay * 2, self.max_backoff)
        self.error = (f"source {self.source.name} was lost and did not come back after "
                      f"{self.reconnects} reconnect attempts")
        return False

    def _run(self):
        period = 1.0 / float(self.pace_fps) if self.pace_fps else 0.0
        next_time = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.lossless:
                    with self._cond:
                        self._cond.wait_for(lambda: len(self._frames) < READ_AHEAD or self._stop.is_set())
                try:
                    image = self.source.read()
                except SourceLost as exc:
                    if self._reopen(str(exc)):
                        continue
                    break
                if image is None:
                    break
                if period:  # a recorded source played at its frame rate
                    next_time += period
                    delay = next_time - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                if self.size and image.shape[1::-1] != tuple(self.size) and not self.source.live:
                    image = cv2.resize(image, tuple(self.size), interpolation=cv2.INTER_AREA)
                frame = Frame(self.captured, image, time.time(), time.monotonic())
                self.captured += 1
                self._hand_over(frame)
        except Exception as exc:  # a broken decoder must end the run with a message, not hang it
            self.error = f"reading {self.source.name} failed: {exc}"
        finally:
            with self._cond:
                self.finished = True
                self._cond.notify_all()
