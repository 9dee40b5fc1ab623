"""edgenn listen: the demo speech model on a keyword stream of real speakers it never heard (window and
streaming mode), the real microphone path through a PulseAudio null sink, third-party models, resampled
sources, short sources and faults."""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, require, require_exe, run_cli
from edgenn.devices.audio_sources import END, AudioSource
from edgenn.devices.listen import run_listen
from edgenn.metrics import match_keywords
from edgenn.wav import resample, write_wav

DEMO = Path(os.environ.get("EDGENN_DEMO_SPEECH", REPO / "edgenn" / "demo" / "speech_commands.keras"))
STREAM_SECONDS, STREAM_SEED = 120.0, 0  # test speakers; the defaults were chosen on dev speakers' streams
MIC_SECONDS = 24.0                      # the part of the stream played through PulseAudio
TOLERANCE = 0.5                         # an event must place its word within 500 ms


def match(truth, events, tolerance=TOLERANCE):
    return match_keywords(truth, events, tolerance)


@pytest.fixture(scope="session")
def keyword_stream(tmp_path_factory):
    """Real test speakers at known times over the held-out real background noise, as 16 and 48 kHz WAVs."""
    sys.path.insert(0, str(REPO))
    from training.real_speech import make_keyword_stream

    samples, rate, truth = make_keyword_stream("test", STREAM_SECONDS, STREAM_SEED)
    folder = tmp_path_factory.mktemp("keyword_stream")
    write_wav(folder / "stream16k.wav", samples, rate)
    write_wav(folder / "stream48k.wav", resample(samples, rate, 48000), 48000)
    write_wav(folder / "mic.wav", samples[:int(MIC_SECONDS * rate)], rate)
    return {"folder": folder, "truth": truth, "samples": samples, "rate": rate}


@pytest.fixture(scope="session")
def demo_bundles(tmp_path_factory):
    """The demo model converted by `edgenn convert` to an int8 window bundle and an int8 streaming bundle."""
    override = os.environ.get("EDGENN_DEMO_SPEECH_BUNDLES")  # a folder with window.tflite and streaming.tflite
    if override:
        return {"window": Path(override) / "window.tflite", "streaming": Path(override) / "streaming.tflite"}
    require(DEMO.exists(), f"the demo speech model {DEMO} (training/train_speech.py)")
    sys.path.insert(0, str(REPO))
    from training.real_speech import write_wav_folder
    from training.speech_data import LABELS

    root = tmp_path_factory.mktemp("demo_speech")
    calibration = write_wav_folder(root / "calibration", "train", per_label=8, seed=99, augmented=True)
    labels_file = root / "labels.txt"  # the model's order, not the folders' sorted one
    labels_file.write_text("\n".join(LABELS) + "\n")
    bundles = {}
    for mode, extra in (("window", []), ("streaming", ["--streaming"])):
        bundles[mode] = root / f"speech_commands_{mode}.tflite"
        result = run_cli(["convert", DEMO, "-o", bundles[mode], "--task", "keywords", "--quantize", "int8",
                          "--calibration", calibration, "--labels", labels_file, *extra], timeout=600)
        require("pipeline_convert" not in result.stderr, "`edgenn convert` for RNN models (converters/rnn.py)")
        assert result.returncode == 0, result.stderr
    return bundles


def listen_events(bundle, source, **options):
    events = []
    summary = run_listen(bundle, str(source), on_detection=events.append, log=lambda message: None, **options)
    return events, summary


@pytest.fixture(scope="session")
def stream_runs(keyword_stream, demo_bundles):
    runs = {}
    for mode in ("window", "streaming"):
        events, summary = listen_events(demo_bundles[mode], keyword_stream["folder"] / "stream16k.wav", mode=mode)
        recall, false, errors = match(keyword_stream["truth"], events)
        runs[mode] = {"events": events, "summary": summary, "recall": recall, "false": false, "errors": errors,
                      "false_per_minute": len(false) / (STREAM_SECONDS / 60)}
        print(f"\n{mode}: recall {recall:.3f} of {len(keyword_stream['truth'])} keywords, {len(false)} false "
              f"({runs[mode]['false_per_minute']:.2f}/min: {[(e['label'], e['stream_time']) for e in false]}), "
              f"max timing error {max(errors, default=0):.2f} s, real-time factor {summary['real_time_factor']}")
    return runs


@pytest.mark.parametrize("mode", ["window", "streaming"])
def test_demo_model_finds_the_keywords_of_the_stream(stream_runs, mode):
    run = stream_runs[mode]
    assert run["summary"]["mode"] == mode and run["summary"]["overflows"] == 0
    assert run["summary"]["audio_seconds"] == pytest.approx(STREAM_SECONDS, abs=0.05)
    # floors under today's model (recall 0.635 window, 0.615 streaming of 52 keywords; 2.0 and 1.0 false events
    # a minute): the bar of 0.9 and 1 a minute at 10-25 dB SNR is not met yet (BENCHMARKS.md, "Real speakers");
    # these catch a regression
    assert run["recall"] >= 0.6
    assert run["false_per_minute"] <= 2.5
    assert max(run["errors"]) <= TOLERANCE
    assert all(e["source"] == "microphone" and e["kind"] == "keyword" and e["model"] for e in run["events"])


def test_48khz_sources_are_resampled_to_the_same_detections(keyword_stream, demo_bundles, stream_runs, tmp_path):
    reference = stream_runs["streaming"]["events"]
    events, summary = listen_events(demo_bundles["streaming"], keyword_stream["folder"] / "stream48k.wav")
    assert "48000 Hz resampled to 16000 Hz" in summary["source"]
    # resampling moves features a little: a word whose score sits at the threshold may go either way
    same, _, shifts = match([(e["stream_time"], e["label"]) for e in reference], events, tolerance=0.2)
    print(f"\n48 kHz: {len(events)} events, {same:.2f} of the 16 kHz run's {len(reference)} at the same label and "
          f"start (within {max(shifts, default=0):.2f} s)")
    assert same >= 0.9 and abs(len(events) - len(reference)) <= max(2, len(reference) // 10)
    # the same 48 kHz audio as raw PCM through a pipe, via the command line: the same events as the file
    pcm = np.clip(np.round(resample(keyword_stream["samples"], 16000, 48000) * 32767), -32768, 32767)
    out = tmp_path / "events.jsonl"
    result = subprocess.run([*edgenn_exe(), "listen", str(demo_bundles["streaming"]), "--source", "-",
                             "--input-rate", "48000", "--events", str(out), "--json"],
                            input=pcm.astype("<i2").tobytes(), capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    piped = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["label"] for e in piped] == [e["label"] for e in events]
    assert json.loads(result.stdout)["audio_seconds"] == pytest.approx(STREAM_SECONDS, abs=0.05)


def edgenn_exe():
    return [str(Path(sys.executable).with_name("edgenn"))]


# --- the real microphone path
@pytest.fixture(scope="session")
def pulse_server():
    """A PulseAudio server of our own with a null sink; its monitor is the default recording source."""
    exe = require_exe("pulseaudio")
    require_exe("paplay")
    runtime = tempfile.mkdtemp(prefix="edgenn-pulse-")
    os.chmod(runtime, 0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime, "PULSE_SERVER": f"unix:{runtime}/pulse/native"}
    server = subprocess.Popen([exe, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
                               "--system=no", "-L", "module-native-protocol-unix",
                               "-L", "module-null-sink sink_name=virt_sink rate=16000 channels=1",
                               "-L", "module-always-sink"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 15
    while not os.path.exists(f"{runtime}/pulse/native") and time.time() < deadline and server.poll() is None:
        time.sleep(0.1)
    require(server.poll() is None and os.path.exists(f"{runtime}/pulse/native"), "a running PulseAudio server")
    yield env
    server.terminate()
    server.wait(timeout=10)
    shutil.rmtree(runtime, ignore_errors=True)


def test_microphone_hears_the_stream_through_a_null_sink(pulse_server, keyword_stream, demo_bundles, stream_runs,
                                                         tmp_path):
    listed = run_cli(["listen", "--list-devices", "--json"], env=pulse_server)
    assert listed.returncode == 0 and "pulse" in [d["name"] for d in json.loads(listed.stdout)]
    out = tmp_path / "mic.jsonl"
    listener = subprocess.Popen([*edgenn_exe(), "listen", str(demo_bundles["streaming"]), "--source", "pulse",
                                 "--events", str(out), "--json"], env=pulse_server, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        started = ""
        while "listening to" not in started and listener.poll() is None:  # LiteRT may log first
            started = listener.stderr.readline()
        subprocess.run(["paplay", "--device=virt_sink", str(keyword_stream["folder"] / "mic.wav")],
                       env=pulse_server, check=True, timeout=MIC_SECONDS + 30)
        time.sleep(1.5)  # the last word's decision comes up to a window after it
        listener.send_signal(signal.SIGINT)
        stdout, stderr = listener.communicate(timeout=30)
    finally:
        if listener.poll() is None:
            listener.kill()
    assert listener.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["stopped_by"] == "interrupted" and summary["audio_seconds"] >= MIC_SECONDS
    assert "events" in stderr and "real-time factor" in stderr
    heard = [json.loads(line) for line in out.read_text().splitlines()]
    played = [e for e in stream_runs["streaming"]["events"] if e["stream_time"] < MIC_SECONDS - 1.0]
    # the microphone started before paplay: align the two clocks on the first word, then compare
    shift = np.median([h["stream_time"] - p["stream_time"] for h, p in zip(heard, played)
                       if h["label"] == p["label"]] or [0.0])
    aligned = [{**h, "stream_time": h["stream_time"] - shift} for h in heard]
    truth = [(e["stream_time"], e["label"]) for e in played]
    recall, false, _ = match(truth, aligned, tolerance=0.3)
    print(f"\nmicrophone: {len(heard)} events, {recall:.2f} of the file run's {len(played)} found, shift {shift:.2f} s")
    assert recall >= 0.9 and len(false) <= 1


def test_missing_device_lists_the_devices(pulse_server, fixtures_dir):
    model = fixtures_dir / "models" / "tflite_support" / "yamnet_audio_classifier_with_metadata.tflite"
    result = run_cli(["listen", model, "--source", "no such microphone"], env=pulse_server)
    assert result.returncode == 1
    line = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(line) == 1 and "no such microphone" in line[0] and "'pulse'" in line[0] and "Traceback" not in result.stderr


def test_real_fixture_words_are_heard(fixtures_dir, demo_bundles):
    """The 9 words of fixtures/audio/speech_commands (speakers outside the dataset split): each clip is a
    source of its own, so the last word of every file needs the end-of-source flush."""
    from training.real_speech import FIXTURE_WORDS

    for mode in ("window", "streaming"):
        heard = wrong = 0
        for name, words in FIXTURE_WORDS.items():
            events, summary = listen_events(demo_bundles[mode], fixtures_dir / "audio" / "speech_commands" / name,
                                            mode=mode)
            labels = [e["label"] for e in events]
            heard += sum(1 for w in set(words) if w in labels)
            wrong += sum(1 for label in labels if label not in words)
            assert all(e["latency_ms"] >= 0 and e["detected_at"] <= summary["audio_seconds"] for e in events)
        print(f"\n{mode}: {heard}/9 fixture words heard, {wrong} wrong events")
        assert heard >= 8 and wrong == 0


def test_a_word_at_the_very_end_of_a_source_is_heard(fixtures_dir, demo_bundles, tmp_path):
    """A 1 s clip ending right after its word: the end-of-source flush still fires, inside the clip's time."""
    yes = fixtures_dir / "audio" / "speech_commands" / "yes.wav"
    out = tmp_path / "events.jsonl"
    result = run_cli(["listen", demo_bundles["window"], "--source", yes, "--events", out])
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["label"] for e in events] == ["yes"]
    assert 0 <= events[0]["stream_time"] <= events[0]["detected_at"] <= 1.0 and events[0]["latency_ms"] >= 0


# --- third-party models
def test_mlcommons_kws_model_hears_right_left_up(fixtures_dir, tmp_path):
    out = tmp_path / "events.jsonl"
    result = run_cli(["listen", fixtures_dir / "models" / "mlcommons_tiny" / "kws_ref_model.tflite",
                      "--frontend", "mlcommons_kws", "--labels",
                      fixtures_dir / "labels" / "speech_commands" / "kws_12_labels.txt",
                      "--source", fixtures_dir / "audio" / "speech_commands" / "right_left_up.wav",
                      "--events", out, "--threshold", "0.5"])
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["label"] for e in events] == ["right", "left", "up"]
    assert [int(e["stream_time"]) for e in events] == [0, 1, 2]  # each inside its own 1 s clip


def test_yamnet_classifies_the_meow(fixtures_dir):
    events, summary = listen_events(
        fixtures_dir / "models" / "tflite_support" / "yamnet_audio_classifier_with_metadata.tflite",
        fixtures_dir / "audio" / "tf_examples" / "meow_16k.wav")
    assert summary["task"] == "audio_classify" and summary["events"] == len(events)
    labels = [e["label"] for e in events]
    assert "Cat" in labels and "Meow" in labels and all(e["kind"] == "audio_class" for e in events)


# --- sources and faults
def test_full_queue_counts_overflows_and_keeps_the_clock():
    source = AudioSource("test", 16000, queue_blocks=2)
    source.live = True
    for _ in range(5):  # nobody reads: 2 blocks fit, 3 are dropped
        source._offer(np.zeros(320, np.float32), time.time())
    assert source.overflows == 3 and source.lost_samples == 960
    assert [source.read().offset, source.read().offset] == [0, 320]
    source._offer(np.zeros(320, np.float32), time.time())
    assert source.read().offset == 640 + 960  # the dropped audio still counts in the stream's time
    source._finish()
    assert source.read() is END and source.read() is END


def test_unsupported_and_missing_wav_give_one_line(fixtures_dir, tmp_path):
    model = fixtures_dir / "models" / "tflite_support" / "yamnet_audio_classifier_with_metadata.tflite"
    float_wav = tmp_path / "float.wav"  # IEEE float WAV (format 3): the wave module refuses it
    data = np.zeros(1600, "<f4").tobytes()
    float_wav.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " +
                          struct.pack("<IHHIIHH", 16, 3, 1, 16000, 64000, 4, 32) + b"data" +
                          struct.pack("<I", len(data)) + data)
    for source, expected in ((float_wav, "16-bit PCM"), (tmp_path / "missing.wav", "no such WAV file")):
        result = run_cli(["listen", model, "--source", source])
        assert result.returncode == 1 and expected in result.stderr and "Traceback" not in result.stderr


def test_bad_usage_and_wrong_models(fixtures_dir, demo_bundles):
    audio = fixtures_dir / "audio" / "speech_commands" / "yes.wav"
    kws = fixtures_dir / "models" / "mlcommons_tiny" / "kws_ref_model.tflite"
    assert run_cli(["listen"]).returncode == 2
    no_frontend = run_cli(["listen", kws, "--source", audio])
    assert no_frontend.returncode == 1 and "--frontend" in no_frontend.stderr
    window_as_stream = run_cli(["listen", demo_bundles["window"], "--source", audio, "--mode", "streaming"])
    assert window_as_stream.returncode == 1 and "--streaming" in window_as_stream.stderr
    bad_threshold = run_cli(["listen", demo_bundles["window"], "--source", audio, "--keyword-threshold", "maybe=0.5"])
    assert bad_threshold.returncode == 1 and "maybe" in bad_threshold.stderr


def test_sigint_ends_a_realtime_run_with_the_summary(keyword_stream, demo_bundles):
    process = subprocess.Popen([*edgenn_exe(), "listen", str(demo_bundles["streaming"]), "--realtime", "--json",
                                "--source", str(keyword_stream["folder"] / "stream16k.wav")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["stopped_by"] == "interrupted" and 0 < summary["audio_seconds"] < 10
    assert "real-time factor" in stderr
