"""Events: what a runner saw, one JSON object per line, the same from the camera and the microphone.

    {"time": 1732612345.123, "source": "camera", "model": "shapes", "kind": "detection",
     "label": "circle", "score": 0.91, "box": [x0, y0, x1, y1], "frame": 120, "latency_ms": 7.4}

Sinks: stdout ("-"), a file (appended), MQTT (`mqtt://HOST[:PORT]/TOPIC`, paho-mqtt).
"""

import json
import sys
import threading
import time
from urllib.parse import urlsplit

from edgenn.errors import EdgennError

MQTT_DEFAULT_PORT = 1883


def make_event(source, model, kind, label, score, frame=None, latency_ms=None, box=None, when=None, **extra):
    """One event dict in the shared schema; keys with value None are left out."""
    event = {"time": round(time.time() if when is None else when, 3), "source": source, "model": model,
             "kind": kind, "label": label, "score": round(float(score), 4)}
    if box is not None:
        event["box"] = [round(float(v), 1) for v in box]
    if frame is not None:
        event["frame"] = int(frame)
    if latency_ms is not None:
        event["latency_ms"] = round(float(latency_ms), 2)
    event.update({k: v for k, v in extra.items() if v is not None})
    return event


def to_line(event):
    return json.dumps(event, separators=(", ", ": "))


class StreamSink:
    """JSON lines to an open text stream (stdout)."""

    def __init__(self, stream):
        self.stream = stream
        self.lock = threading.Lock()

    def emit(self, event):
        with self.lock:
            self.stream.write(to_line(event) + "\n")
            self.stream.flush()

    def close(self):
        pass


class FileSink(StreamSink):
    """JSON lines appended to a file, flushed per event so `tail -f` sees them at once."""

    def __init__(self, path):
        try:
            super().__init__(open(path, "a", encoding="utf-8"))
        except OSError as exc:
            raise EdgennError(f"cannot write events to {path} ({exc.strerror}); check --events") from None
        self.path = path

    def close(self):
        self.stream.close()


class MqttSink:
    """Publishes each event as one JSON message on TOPIC of an MQTT broker (QoS 0)."""

    def __init__(self, url, client_id=""):
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise EdgennError("MQTT events need paho-mqtt: pip install 'paho-mqtt>=2'") from None
        parts = urlsplit(url)
        self.topic = parts.path.lstrip("/")
        if not parts.hostname or not self.topic:
            raise EdgennError(f"MQTT events need mqtt://HOST[:PORT]/TOPIC, got '{url}'")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if parts.username:
            self.client.username_pw_set(parts.username, parts.password)
        address = f"{parts.hostname}:{parts.port or MQTT_DEFAULT_PORT}"
        try:
            self.client.connect(parts.hostname, parts.port or MQTT_DEFAULT_PORT, keepalive=30)
        except (OSError, ValueError) as exc:
            raise EdgennError(f"cannot reach the MQTT broker at {address} ({exc}); "
                              "check that it runs and the --events URL") from None
        self.client.loop_start()
        self.last = None

    def emit(self, event):
        self.last = self.client.publish(self.topic, to_line(event), qos=0)

    def close(self):
        if self.last is not None:  # let queued messages leave before disconnecting
            try:
                self.last.wait_for_publish(timeout=5)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()


class MultiSink:
    """Several sinks behind one emit()."""

    def __init__(self, sinks):
        self.sinks = list(sinks)

    def emit(self, event):
        for sink in self.sinks:
            sink.emit(event)

    def close(self):
        for sink in self.sinks:
            sink.close()


def make_sink(spec):
    """A sink from a spec: '-' = stdout, 'mqtt://HOST[:PORT]/TOPIC' = MQTT, anything else = a file.
    A list or tuple of specs gives one MultiSink."""
    if isinstance(spec, (list, tuple)):
        return MultiSink(make_sink(s) for s in spec)
    if spec == "-":
        return StreamSink(sys.stdout)
    if spec.startswith("mqtt://"):
        return MqttSink(spec)
    if "://" in spec:
        raise EdgennError(f"unknown event sink '{spec}'; use -, a file path or mqtt://HOST[:PORT]/TOPIC")
    return FileSink(spec)
