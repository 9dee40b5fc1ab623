"""Shared test fixtures. Published models and data come from EDGENN_FIXTURES (never copied here).

Under CI=true a missing component fails the test instead of skipping it, so a missing install
step shows in CI."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parents[1]


def require(condition, what):
    """Skip locally, fail in CI, when a component the test needs is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing component under CI=true: {what}")
    pytest.skip(f"missing component: {what}")


def venv_python(folder, target):
    """The python of a side venv that `make TARGET` builds (it holds packages that cannot share .venv)."""
    python = REPO / folder / "bin" / "python"
    require(python.exists(), f"the {folder} venv (make {target})")
    return python


def require_exe(name):
    path = shutil.which(name) or (name if os.path.isabs(name) and os.path.exists(name) else None)
    require(path, f"executable {name!r} (install it with `make test` as root)")
    return path


@pytest.fixture(scope="session")
def fixtures_dir():
    path = Path(os.environ.get("EDGENN_FIXTURES", REPO.parent / "shared" / "fixtures")).resolve()
    require(path.is_dir(), f"fixtures folder {path} (set EDGENN_FIXTURES)")
    return path


@pytest.fixture(scope="session")
def edgenn_cmd():
    """The installed console script, run as a separate process."""
    exe = Path(sys.executable).with_name("edgenn")
    require(exe.exists(), "the edgenn console script (pip install -e .)")
    return [str(exe)]


def free_port():
    """A port on 127.0.0.1 that nothing listens on (connecting is refused at once) until a test binds it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_models(script, root):
    """Run tests/SCRIPT ROOT, which builds Keras models with TensorFlow in its own process; returns ROOT."""
    subprocess.run([sys.executable, str(REPO / "tests" / script), str(root)], check=True, capture_output=True,
                   timeout=600)
    return root


def run_cli(args, **kwargs):
    """Run `edgenn ARGS` in a child process; returns CompletedProcess with text output."""
    exe = Path(sys.executable).with_name("edgenn")
    kwargs.setdefault("timeout", 300)
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="session")
def mosquitto():
    exe = "/usr/sbin/mosquitto"
    require(os.path.exists(exe), "mosquitto (apt-get install mosquitto)")
    port = free_port()
    folder = tempfile.mkdtemp()
    config = os.path.join(folder, "mosquitto.conf")
    with open(config, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen([exe, "-c", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


def chromium_driver():
    require(os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver"),
            "chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={tempfile.mkdtemp(prefix='edgenn-chromium-')}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


@contextlib.contextmanager
def mqtt_subscriber(port, topic):
    """A client of the test broker on PORT, subscribed to TOPIC; yields the list its JSON messages arrive in."""
    import paho.mqtt.client as mqtt

    received, subscribed = [], threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, message: received.append(json.loads(message.payload))
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(topic)
    client.loop_start()
    try:
        assert subscribed.wait(10), f"no subscription to {topic} on the test broker"
        yield received
    finally:
        client.loop_stop()
        client.disconnect()


def wait_until(condition, seconds=10):
    """Poll `condition` until it holds or `seconds` pass; returns its last value."""
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    return condition()
