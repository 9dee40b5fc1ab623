"""Every command refuses bad input the same way: a non-zero exit (2 for bad usage, 1 for a failure of
the work), exactly one stderr line `edgenn: error: ...` naming the problem and the fix, no traceback,
and nothing written. Each case runs the CLI as a child process, in a fresh folder with its own HOME.

Cheap cases come first: most fail before a model is opened; only one starts TensorFlow. Hosts and
brokers that do not answer are closed ports on 127.0.0.1."""

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, free_port, run_cli
from edgenn.bundle import make_bundle
from edgenn.manifest import new_manifest

MOBILENET = "models/coral/mobilenet_v1_0.25_128_quant.tflite"  # [1, 1001] scores, 0.5 MB
EDGETPU = "models/coral/edgetpu/mobilenet_v1_0.25_128_quant_edgetpu.tflite"
KWS = "models/mlcommons_tiny/kws_ref_model.tflite"  # 12 keywords, MFCC input [1, 49, 10, 1]
IMAGE = "images/coral/cat.bmp"
WAV = "audio/speech_commands/yes.wav"
KWS_LABELS = "labels/speech_commands/kws_12_labels.txt"


@pytest.fixture(scope="module")
def inputs(fixtures_dir, tmp_path_factory):
    """Names the cases use in their arguments ({name}), mapped to files made once."""
    root = tmp_path_factory.mktemp("bad_inputs")
    mobilenet = fixtures_dir / MOBILENET
    files = {
        "empty": root / "empty.tflite",
        "text": root / "notes.tflite",
        "damaged": root / "damaged.tflite",
        "text_wav": root / "notes.wav",
        "text_txt": root / "notes.txt",
        "keras_text": root / "notes.keras",
        "short_labels": root / "short_labels.txt",
        "audio_bundle": root / "keywords.tflite",
        "bad_toml": root / "bad.toml",
        "fleet": root / "fleet.toml",
    }
    files["empty"].write_bytes(b"")
    for name in ("text", "text_wav", "text_txt", "keras_text"):
        files[name].write_text("these are notes, not data\n")
    files["damaged"].write_bytes(mobilenet.read_bytes()[:20_000])  # a download cut short
    files["short_labels"].write_text("".join(f"class {i}\n" for i in range(10)))
    labels = (fixtures_dir / KWS_LABELS).read_text().split()
    files["audio_bundle"].write_bytes(make_bundle((fixtures_dir / KWS).read_bytes(), new_manifest(
        "keywords", "keywords", [{"shape": [1, 49, 10, 1], "dtype": "int8"}], labels=labels), labels))
    files["bad_toml"].write_text("[devices.pi1\nhost = \n")
    files["fleet"].write_text("".join(f'[devices.pi{i}]\nhost = "127.0.0.1"\nport = {free_port()}\n'
                                      'groups = ["fleet"]\n\n' for i in (1, 2)))
    return {**{name: str(path) for name, path in files.items()},
            "mobilenet": str(mobilenet), "edgetpu": str(fixtures_dir / EDGETPU), "kws": str(fixtures_dir / KWS),
            "image": str(fixtures_dir / IMAGE), "wav": str(fixtures_dir / WAV),
            "kws_labels": str(fixtures_dir / KWS_LABELS), "keras": str(REPO / "edgenn/demo/shapes_classifier.keras"),
            "missing": str(root / "nothing" / "here.tflite"), "closed": str(free_port())}


SOURCE = ["--source", "{image}"]
# (id, arguments, exit code, words the error line must hold); {name} is a file of `inputs`, {out} the
# case's own empty folder (the working directory), where nothing may appear.
CASES = [
    ("unknown-command", ["frobnicate"], 2, ["No such command", "edgenn --help"]),
    # convert: all refused before TensorFlow starts, but the last
    ("convert-missing-model", ["convert", "{missing}", "-o", "{out}/m.tflite", "--quantize", "float32"], 1,
     ["here.tflite", "no such file"]),
    ("convert-output-folder-missing", ["convert", "{keras}", "-o", "{out}/no/dir/m.tflite"], 1,
     ["-o", "does not exist"]),
    ("convert-output-unwritable", ["convert", "{keras}", "-o", "/sys/m.tflite"], 1, ["-o", "cannot write"]),
    ("convert-output-not-tflite", ["convert", "{keras}", "-o", "{out}/m.onnx", "--quantize", "float32"], 1,
     [".tflite"]),
    ("convert-input-size-zero", ["convert", "{keras}", "-o", "{out}/m.tflite", "--input-size", "0x0"], 2,
     ["--input-size", "1 or more"]),
    ("convert-input-size-malformed", ["convert", "{keras}", "-o", "{out}/m.tflite", "--input-size", "big"], 2,
     ["--input-size", "HxW"]),
    ("convert-mean-malformed", ["convert", "{keras}", "-o", "{out}/m.tflite", "--mean", "grey"], 2, ["--mean"]),
    ("convert-unknown-quantize", ["convert", "{keras}", "-o", "{out}/m.tflite", "--quantize", "int4"], 2,
     ["--quantize", "int4"]),
    ("convert-int8-without-calibration", ["convert", "{keras}", "-o", "{out}/m.tflite"], 1, ["--calibration"]),
    ("convert-io-needs-int8", ["convert", "{keras}", "-o", "{out}/m.tflite", "--quantize", "float16", "--io", "int8"],
     1, ["--io int8", "int8"]),
    ("convert-labels-missing", ["convert", "{keras}", "-o", "{out}/m.tflite", "--quantize", "float32",
                                "--labels", "{missing}"], 1, ["here.tflite"]),
    ("convert-num-calibration-zero", ["convert", "{keras}", "-o", "{out}/m.tflite", "--num-calibration", "0"], 2,
     ["--num-calibration"]),
    ("convert-text-as-keras", ["convert", "{keras_text}", "-o", "{out}/m.tflite", "--quantize", "float32"], 1,
     ["notes.keras"]),
    # inspect
    ("inspect-missing", ["inspect", "{missing}"], 1, ["here.tflite", "no such file"]),
    ("inspect-empty", ["inspect", "{empty}"], 1, ["empty.tflite", "not a TFLite model"]),
    ("inspect-text", ["inspect", "{text}"], 1, ["notes.tflite", "not a TFLite model"]),
    ("inspect-damaged", ["inspect", "{damaged}"], 1, ["damaged.tflite"]),
    ("inspect-picture", ["inspect", "{image}"], 1, ["cat.bmp", "not a TFLite model"]),
    ("inspect-no-model", ["inspect"], 2, ["MODELS", "edgenn inspect --help"]),
    ("inspect-unknown-runtime", ["inspect", "{mobilenet}", "--runtime", "onnx"], 2, ["--runtime", "onnx"]),
    # bench
    ("bench-missing", ["bench", "{missing}"], 1, ["here.tflite", "no such file"]),
    ("bench-damaged", ["bench", "{damaged}", "--runs", "1"], 1, ["damaged.tflite", "damaged TFLite flatbuffer"]),
    ("bench-threads-malformed", ["bench", "{mobilenet}", "--threads", "two"], 2, ["--threads", "1,2,4"]),
    ("bench-runs-zero", ["bench", "{mobilenet}", "--runs", "0"], 2, ["--runs"]),
    ("bench-plot-unwritable", ["bench", "{mobilenet}", "--plot", "/sys/latency.png"], 1, ["--plot", "cannot write"]),
    ("bench-plot-folder-missing", ["bench", "{mobilenet}", "--plot", "{out}/no/latency.png"], 1,
     ["--plot", "does not exist"]),
    ("bench-edgetpu-model-without-tpu", ["bench", "{edgetpu}", "--runs", "1"], 1, ["Edge TPU", "libedgetpu"]),
    # camera
    ("camera-missing-model", ["camera", "{missing}", *SOURCE], 1, ["here.tflite", "no such file"]),
    ("camera-empty-model", ["camera", "{empty}", *SOURCE], 1, ["not a TFLite model"]),
    ("camera-wav-as-model", ["camera", "{wav}", *SOURCE], 1, ["yes.wav", "not a TFLite model"]),
    ("camera-damaged-model", ["camera", "{damaged}", *SOURCE], 1, ["damaged.tflite"]),
    ("camera-audio-model", ["camera", "{audio_bundle}", *SOURCE], 1, ["audio model", "edgenn listen"]),
    ("camera-yolov8-decoder-on-classifier", ["camera", "{mobilenet}", *SOURCE, "--decoder", "yolov8"], 1,
     ["yolov8", "[[1, 1001]]", "topk"]),
    ("camera-ssd-decoder-on-classifier", ["camera", "{mobilenet}", *SOURCE, "--decoder", "ssd_postprocess"], 1,
     ["ssd_postprocess", "topk"]),
    ("camera-unknown-decoder", ["camera", "{mobilenet}", *SOURCE, "--decoder", "centernet"], 1,
     ["centernet", "yolov8"]),
    ("camera-threshold-above-1", ["camera", "{mobilenet}", *SOURCE, "--threshold", "5"], 2, ["--threshold", "0<=x<=1"]),
    ("camera-threshold-negative", ["camera", "{mobilenet}", *SOURCE, "--threshold", "-0.1"], 2, ["--threshold"]),
    ("camera-labels-count", ["camera", "{mobilenet}", *SOURCE, "--labels", "{short_labels}"], 1,
     ["--labels", "10 labels", "1001 classes"]),
    ("camera-labels-missing", ["camera", "{mobilenet}", *SOURCE, "--labels", "{missing}"], 2, ["--labels"]),
    ("camera-size-zero", ["camera", "{mobilenet}", *SOURCE, "--size", "0x0"], 2, ["--size", "WIDTHxHEIGHT"]),
    ("camera-source-missing", ["camera", "{mobilenet}", "--source", "{missing}"], 1, ["no such file"]),
    ("camera-source-text", ["camera", "{mobilenet}", "--source", "{text_txt}"], 1, ["notes.txt"]),
    ("camera-record-unknown-extension", ["camera", "{mobilenet}", *SOURCE, "--record", "{out}/a.webm"], 1,
     ["--record", ".mp4", ".mkv = Motion JPEG in Matroska"]),
    ("camera-record-folder-missing", ["camera", "{mobilenet}", *SOURCE, "--record", "{out}/no/a.mp4"], 1,
     ["--record", "does not exist"]),
    ("camera-record-unwritable", ["camera", "{mobilenet}", *SOURCE, "--record", "/sys/a.mp4"], 1,
     ["--record", "cannot write"]),
    ("camera-events-unwritable", ["camera", "{mobilenet}", *SOURCE, "--events", "/sys/events.jsonl"], 1,
     ["--events", "cannot write"]),
    ("camera-events-unknown-scheme", ["camera", "{mobilenet}", *SOURCE, "--events", "ftp://host/t"], 1,
     ["ftp://host/t", "mqtt://"]),
    ("camera-broker-unreachable", ["camera", "{mobilenet}", *SOURCE, "--events", "mqtt://127.0.0.1:{closed}/t"],
     1, ["MQTT broker", "127.0.0.1:{closed}"]),
    ("camera-broker-without-topic", ["camera", "{mobilenet}", *SOURCE, "--events", "mqtt://127.0.0.1"], 1,
     ["TOPIC"]),
    ("camera-max-frames-zero", ["camera", "{mobilenet}", *SOURCE, "--max-frames", "0"], 2, ["--max-frames"]),
    ("camera-unknown-runtime", ["camera", "{mobilenet}", *SOURCE, "--runtime", "onnx"], 2, ["--runtime"]),
    # listen
    ("listen-no-model", ["listen"], 2, ["MODEL", "--list-devices"]),
    ("listen-missing-model", ["listen", "{missing}", "--source", "{wav}"], 1, ["here.tflite", "no such file"]),
    ("listen-picture-model", ["listen", "{mobilenet}", "--source", "{wav}"], 1, ["--frontend"]),
    ("listen-threshold-above-1", ["listen", "{audio_bundle}", "--source", "{wav}", "--threshold", "5"], 2,
     ["--threshold"]),
    ("listen-keyword-threshold-above-1", ["listen", "{audio_bundle}", "--source", "{wav}",
                                          "--keyword-threshold", "go=2"], 1, ["go=2", "0 to 1"]),
    ("listen-keyword-threshold-malformed", ["listen", "{audio_bundle}", "--source", "{wav}",
                                            "--keyword-threshold", "go"], 1, ["'go'", "LABEL=SCORE"]),
    ("listen-labels-count", ["listen", "{kws}", "--frontend", "mlcommons_kws", "--source", "{wav}",
                             "--labels", "{short_labels}"], 1, ["10 labels", "12 model outputs", "--labels"]),
    ("listen-source-missing", ["listen", "{kws}", "--frontend", "mlcommons_kws", "--labels", "{kws_labels}",
                               "--source", "{out}/missing.wav"], 1, ["missing.wav"]),
    ("listen-source-not-wav", ["listen", "{kws}", "--frontend", "mlcommons_kws", "--labels", "{kws_labels}",
                               "--source", "{text_wav}"], 1, ["notes.wav"]),
    ("listen-unknown-frontend", ["listen", "{kws}", "--frontend", "bogus", "--source", "{wav}"], 1,
     ["--frontend", "mlcommons_kws"]),
    ("listen-broker-unreachable", ["listen", "{kws}", "--frontend", "mlcommons_kws", "--labels", "{kws_labels}",
                                   "--source", "{wav}", "--events", "mqtt://127.0.0.1:{closed}/t"], 1,
     ["MQTT broker"]),
    ("listen-states-out-of-range", ["listen", "{kws}", "--states", "9"], 2, ["--states"]),
    # flash, rollback, models
    ("flash-missing-model", ["flash", "{missing}", "{out}"], 1, ["here.tflite", "no such file"]),
    ("flash-text-model", ["flash", "{text}", "{out}"], 1, ["not a TFLite model"]),
    ("flash-no-target", ["flash", "{mobilenet}"], 2, ["TARGETS"]),
    ("flash-unreachable-host", ["flash", "{mobilenet}", "root@127.0.0.1:{closed}", "--timeout", "1"], 1,
     ["127.0.0.1:{closed}", "cannot connect"]),
    ("flash-folder-missing", ["flash", "{mobilenet}", "{out}/card/"], 1, ["no such folder"]),
    ("flash-keep-zero", ["flash", "{mobilenet}", "{out}", "--keep", "0"], 2, ["--keep"]),
    ("flash-malformed-target", ["flash", "{mobilenet}", "pi@"], 1, ["'pi@' is not a target"]),
    ("flash-port-out-of-range", ["flash", "{mobilenet}", "pi@host:99999"], 1, ["99999", "out of range"]),
    ("flash-inventory-missing", ["flash", "{mobilenet}", "cameras", "-i", "{out}/fleet.toml"], 1,
     ["fleet.toml", "--inventory"]),
    ("flash-inventory-not-toml", ["flash", "{mobilenet}", "cameras", "-i", "{bad_toml}"], 1,
     ["bad.toml", "not valid TOML"]),
    ("flash-c-array-to-device", ["flash", "{mobilenet}", "root@127.0.0.1:{closed}", "--format", "c"], 1,
     ["--format c", "local folder"]),
    ("flash-unknown-profile", ["flash", "{mobilenet}", "{out}", "--profile", "pi9"], 1, ["pi9"]),
    ("rollback-unreachable-host", ["rollback", "root@127.0.0.1:{closed}", "--timeout", "1"], 1, ["cannot connect"]),
    ("models-unreachable-host", ["models", "root@127.0.0.1:{closed}", "--timeout", "1"], 1, ["cannot connect"]),
    ("models-unreachable-group", ["models", "fleet", "-i", "{fleet}", "--timeout", "1"], 1,
     ["2 of 2 devices", "pi1, pi2"]),
    ("models-ssh-config-missing", ["models", "root@127.0.0.1:{closed}", "--ssh-config", "{out}/ssh_config"], 1,
     ["ssh_config", "--ssh-config"]),
    # service
    ("service-unknown-mode", ["service", "install", "radio", "{mobilenet}"], 2, ["radio", "camera"]),
    ("service-model-not-installed", ["service", "install", "camera", "ghost"], 1, ["ghost", "flash it first"]),
    ("service-runner-refuses-threshold", ["service", "install", "camera", "{mobilenet}", "--", "--threshold", "5"],
     2, ["edgenn camera", "--threshold", "0<=x<=1"]),
    ("service-runner-refuses-option", ["service", "install", "listen", "{kws}", "--", "--sorce", "default"], 2,
     ["edgenn listen", "--sorce"]),
    ("service-runner-refuses-keyword-threshold", ["service", "install", "listen", "{kws}", "--",
                                                  "--keyword-threshold", "go=2"], 1, ["edgenn listen", "0 to 1"]),
    ("service-uninstall-absent", ["service", "uninstall", "camera", "ghost"], 1, ["no such unit"]),
    ("doctor-unknown-option", ["doctor", "--fix"], 2, ["--fix", "edgenn doctor --help"]),
]


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def error_lines(stderr):
    """stderr without LiteRT's own INFO lines (its XNNPACK notice), which edgenn cannot silence."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("INFO: ")]


def run_case(args, inputs, tmp_path, env=None):
    out, home = tmp_path / "out", tmp_path / "home"
    out.mkdir()
    home.mkdir()
    names = {**inputs, "out": str(out)}
    before = tree(tmp_path)
    result = run_cli([arg.format(**names) for arg in args], cwd=out, timeout=120,
                     env={**os.environ, "HOME": str(home), "DISPLAY": "", "EDGENN_INVENTORY": "", **(env or {})})
    assert tree(tmp_path) == before, f"left behind: {sorted(set(tree(tmp_path)) - set(before))}"
    return result, names


@pytest.mark.parametrize("args, code, words", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_line(args, code, words, inputs, tmp_path):
    result, names = run_case(args, inputs, tmp_path)
    lines = error_lines(result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert len(lines) == 1 and lines[0].startswith("edgenn: error: "), result.stderr
    for word in words:
        assert word.format(**names) in lines[0], lines[0]
    assert result.returncode == code, (result.returncode, lines[0])


def test_the_table_covers_every_command():
    from edgenn.cli import COMMANDS

    covered = {case[1][0] for case in CASES}
    assert set(COMMANDS) - covered == {"demo"}  # demo's bad inputs are tested with the demo (test_demo.py)
    assert len(CASES) >= 50


def test_models_of_a_group_report_every_device(inputs, tmp_path):
    result, _ = run_case(["models", "fleet", "-i", "{fleet}", "--timeout", "1"], inputs, tmp_path)
    failed = [line.split()[:2] for line in result.stdout.splitlines()]
    assert failed == [["pi1", "FAILED:"], ["pi2", "FAILED:"]], result.stdout
    listed = run_cli(["models", "fleet", "-i", inputs["fleet"], "--timeout", "1", "--json"])
    assert [(row["target"], "cannot connect" in row["error"]) for row in json.loads(listed.stdout)] == \
        [("pi1", True), ("pi2", True)]


def test_camera_without_opencv_says_how_to_install_it_and_listen_still_runs(inputs, tmp_path):
    fake = tmp_path / "no_opencv"
    fake.mkdir()
    (fake / "cv2.py").write_text("raise ModuleNotFoundError(\"No module named 'cv2'\", name='cv2')\n")
    env = {"PYTHONPATH": str(fake)}
    result, _ = run_case(["camera", "{mobilenet}", "--source", "{image}"], inputs, tmp_path, env)
    lines = error_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "needs OpenCV" in lines[0] and "pip install opencv-python-headless" in lines[0]
    heard = run_cli(["listen", inputs["kws"], "--frontend", "mlcommons_kws", "--labels", inputs["kws_labels"],
                     "--source", inputs["wav"], "--json"], env={**os.environ, **env})
    assert heard.returncode == 0, heard.stderr
    assert json.loads(heard.stdout)["audio_seconds"] > 0.9


def test_a_runtime_crash_names_the_runtime_not_the_model(inputs, tmp_path):
    """A valid model that crashes LiteRT while it loads (a LiteRT that dies on any model stands in)."""
    fake = tmp_path / "crashing_litert" / "ai_edge_litert"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "interpreter.py").write_text("import os, signal\n\nload_delegate = None\n\n\nclass Interpreter:\n"
                                         "    def __init__(self, *args, **kwargs):\n"
                                         "        os.kill(os.getpid(), signal.SIGSEGV)\n")
    result, _ = run_case(["camera", "{mobilenet}", "--source", "{image}"], inputs, tmp_path,
                         {"PYTHONPATH": str(fake.parent)})
    lines = error_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "ai-edge-litert" in lines[0] and "SIGSEGV" in lines[0] and "--runtime" in lines[0], lines[0]
    assert "corrupt" not in lines[0]


def test_record_says_what_the_extension_gives(inputs, tmp_path):
    video = tmp_path / "annotated.mkv"
    done = run_cli(["camera", inputs["mobilenet"], "--source", inputs["image"], "--record", video])
    assert done.returncode == 0, done.stderr
    assert f"1 frames to {video} (Motion JPEG in Matroska)" in done.stderr
    assert video.stat().st_size > 0
    help_text = run_cli(["camera", "--help"]).stdout
    assert ".mkv = Motion JPEG in" in " ".join(help_text.split())


def test_doctor_keeps_tensorflow_quiet():
    result = run_cli(["doctor", "--json"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert {c["area"]: c["ok"] for c in json.loads(result.stdout)}["architecture"]


def test_doctor_on_32_bit_arm_says_to_install_the_64_bit_os():
    pretend = "import platform; platform.machine = lambda: 'armv7l'; from edgenn.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", pretend, "doctor", "--json"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1, result.stderr
    check = {c["area"]: c for c in json.loads(result.stdout)}["architecture"]
    assert not check["ok"] and check["required"] and "armv7l" in check["detail"]
    assert "64-bit" in check["fix"] and "uname -m" in check["fix"] and "aarch64" in check["fix"]


@pytest.fixture
def fake_systemd(tmp_path):
    """systemctl that succeeds and loginctl that says lingering is off, both logging their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name, body in (("systemctl", ""), ("loginctl", 'case "$1" in show-user) echo no;; esac\n')):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n{body}exit 0\n')
        script.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path / "home")}
    return env, log


def test_service_install_prints_the_lingering_command(fake_systemd, inputs):
    env, log = fake_systemd
    done = run_cli(["service", "install", "camera", inputs["mobilenet"], "--", "--source", "0"], env=env)
    assert done.returncode == 0, done.stderr
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    assert f"run: loginctl enable-linger {user}" in done.stdout
    assert "enable-linger" not in log.read_text()


def test_service_install_on_a_terminal_offers_to_enable_lingering(fake_systemd, inputs):
    env, log = fake_systemd
    controller, terminal = pty.openpty()
    os.write(controller, b"y\n")
    done = subprocess.run([str(Path(sys.executable).with_name("edgenn")), "service", "install", "camera",
                           inputs["mobilenet"], "--", "--source", "0"], stdin=terminal, capture_output=True,
                          text=True, env=env, timeout=120)
    os.close(terminal)
    os.close(controller)
    assert done.returncode == 0, done.stderr
    assert "lingering is off" in done.stdout and "lingering enabled" in done.stdout
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    assert f"loginctl enable-linger {user}" in log.read_text()
