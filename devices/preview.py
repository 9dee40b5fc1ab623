"""A small web preview from the standard library: the live annotated stream (MJPEG), the latest
events as JSON and an HTML page showing both (`edgenn listen`: the events alone).

Bound to 127.0.0.1 by default. Any other address exposes the camera to the network, so it needs a
token; every request must then carry ?token=TOKEN (the page passes it on to its own requests)."""

import hmac
import ipaddress
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from edgenn.errors import EdgennError

BOUNDARY = "edgennframe"
JPEG_QUALITY = 80


def parse_address(text, default_port=8080):
    """'HOST:PORT', ':PORT', 'PORT' or 'HOST' -> (host, port); host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":") if ":" in text else ("", "", text)
    if not sep and not text.isdigit():
        host, port = text, str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise EdgennError(f"--preview {text}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host, int(port)


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PreviewState:
    """What the page shows: the newest JPEG, recent events and run statistics; shared by threads."""

    def __init__(self, title, max_events=50):
        self.title = title
        self.jpeg = None
        self.sequence = 0
        self.events = deque(maxlen=max_events)
        self.stats = {}
        self.cond = threading.Condition()

    def publish_frame(self, image):
        import cv2  # here, not at the top: `edgenn listen` serves events only and must run without OpenCV

        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            with self.cond:
                self.jpeg, self.sequence = data.tobytes(), self.sequence + 1
                self.cond.notify_all()

    def publish_events(self, events, stats):
        with self.cond:
            self.events.extend(events)
            self.stats = dict(stats)

    def snapshot(self):
        with self.cond:
            return {"title": self.title, "frame_sequence": self.sequence, "stats": self.stats,
                    "events": list(self.events)[::-1]}

    def next_jpeg(self, after, timeout=2.0):
        with self.cond:
            self.cond.wait_for(lambda: self.sequence != after, timeout)
            return self.sequence, self.jpeg


def _handler(state, token, closing):
    page = resources.files("edgenn.devices").joinpath("web/preview.html").read_text(encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        server_version = "edgenn-preview"

        def log_message(self, *args):  # keep the runner's output clean
            pass

        def _send(self, status, content_type, body):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlsplit(self.path)
            given = parse_qs(url.query).get("token", [""])[0]
            if token and not hmac.compare_digest(given.encode(), token.encode()):
                return self._send(403, "text/plain", b"forbidden: add ?token=YOUR_TOKEN to the address\n")
            if url.path in ("/", "/index.html"):
                return self._send(200, "text/html; charset=utf-8", page.encode())
            if url.path == "/events.json":
                return self._send(200, "application/json", json.dumps(state.snapshot()).encode())
            if url.path == "/frame.jpg":
                _, jpeg = state.next_jpeg(-1, timeout=0)
                return self._send(200, "image/jpeg", jpeg) if jpeg else self._send(503, "text/plain", b"no frame yet\n")
            if url.path == "/stream.mjpg":
                return self._stream()
            return self._send(404, "text/plain", b"not found\n")

        def _stream(self):
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            sequence = -1
            try:
                while not closing.is_set():
                    sequence, jpeg = state.next_jpeg(sequence)
                    if jpeg is None:
                        continue
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                     f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


class PreviewServer:
    """Serves a PreviewState on HOST:PORT from a daemon thread."""

    def __init__(self, state, host="127.0.0.1", port=8080, token=None):
        if not is_loopback(host) and not token:
            raise EdgennError(f"--preview {host}:{port} would show the camera to the network; add "
                              "--preview-token TOKEN (or bind 127.0.0.1 and use an SSH tunnel)")
        self.state, self.token = state, token
        self.closing = threading.Event()
        try:
            self.server = ThreadingHTTPServer((host, port), _handler(state, token, self.closing))
        except OSError as exc:
            raise EdgennError(f"--preview {host}:{port}: cannot listen ({exc.strerror}); choose another port") from None
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="preview", daemon=True)

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/" + (f"?token={self.token}" if self.token else "")

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.closing.set()
        with self.state.cond:
            self.state.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
