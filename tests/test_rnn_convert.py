"""RNN converter: builtin-only conversion in every mode, window-vs-streaming equivalence, bad input.

All conversions run once, in one spawned child process (tests/rnn_driver.py)."""

import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from edgenn.audio_frontend import FrontEnd, FrontEndParams
from edgenn.converters.audio_data import window_features
from edgenn.errors import EdgennError
from edgenn.modelfile import read_contents
from edgenn.runtime import open_model
from edgenn.streaming import Stream, run_steps
from edgenn.wav import read_wav

from conftest import require, run_cli

import rnn_driver

sys.path.insert(0, str(rnn_driver.REPO))  # training/ (the demo's real-clip list)


@pytest.fixture(scope="session")
def converted():
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(rnn_driver.run_all).result(timeout=900)


@pytest.mark.parametrize("kind", rnn_driver.SWEEP_KINDS)
def test_every_mode_converts_to_builtins_only(converted, kind):
    for mode in rnn_driver.MODES:
        result = converted["sweep"][kind][mode]
        if result["error"]:  # allowed only for int16x8, and the message must say so
            assert mode == "int16x8" and "int16x8" in result["error"], result["error"]
            continue
        contents = read_contents(result["tflite"])
        assert "WHILE" not in contents.op_names and not contents.flex_ops, (kind, mode, contents.op_names)
        assert result["manifest"]["quantization"]["mode"] == mode
        assert result["manifest"]["lowering"]["method"] == "unroll"
        model = open_model(result["tflite"], probe=False)
        scores = model.run(np.zeros(model.inputs[0].shape, np.float32))[0]
        assert scores.shape == (1, 12) and np.isclose(scores.sum(), 1.0, atol=0.05)


def test_int8_models_are_fully_integer(converted):
    for kind in rnn_driver.SWEEP_KINDS:
        ops = read_contents(converted["sweep"][kind]["int8"]["tflite"]).op_names
        assert "FULLY_CONNECTED" in ops and "WHILE" not in ops


def test_stateful_layer_converts_from_weights_and_explains(converted):
    notes = converted["stateful"]["manifest"]["lowering"]["notes"]
    assert len(notes) == 1 and "stateful=True" in notes[0] and "--streaming" in notes[0]


@pytest.mark.parametrize("kind", rnn_driver.EQUIVALENCE_KINDS)
def test_float_streaming_equals_window(converted, kind):
    result = converted["equivalence"][kind]["float32"]
    evaluation = result["manifest"]["evaluation"]["window_vs_streaming"]
    assert evaluation["windows"] == 200 and evaluation["max_abs_diff"] <= 1e-4
    # and the same by hand, through the public numpy runner
    windows = converted["held_out"][0][:5]
    window_model = open_model(result["window_tflite"], probe=False)
    step_model = open_model(result["tflite"], probe=False)
    spec = result["manifest"]["streaming"]
    for window in windows:
        window = window.reshape(spec["window_frames"], *spec["frame_shape"][2:])
        expected = window_model.run(window[None])[0][0]
        assert np.max(np.abs(run_steps(step_model, window, spec)[0] - expected)) <= 1e-4


@pytest.mark.parametrize("kind", [*rnn_driver.EQUIVALENCE_KINDS, "crnn_int8_io"])
def test_int8_streaming_matches_window(converted, kind):
    evaluation = converted["equivalence"][kind]["int8"]["manifest"]["evaluation"]
    assert evaluation["window_vs_streaming"]["windows"] == 200
    assert evaluation["window_vs_streaming"]["argmax_agreement"] == 1.0
    assert evaluation["window_vs_streaming"]["max_abs_diff"] <= 0.05
    assert evaluation["float_vs_quantized"]["drop_pp"] <= 1.0


def test_int8_io_states_are_requantized(converted):
    result = converted["equivalence"]["crnn_int8_io"]["int8"]
    spec = result["manifest"]["streaming"]
    assert [s["kind"] for s in spec["states"]] == ["ring", "recurrent"] and spec["warmup_frames"] == 2
    model = open_model(result["tflite"], probe=False)
    assert model.inputs[0].dtype == np.int8
    state = spec["states"][1]
    assert state["quantization"]["input"] != state["quantization"]["output"]  # hence the requantization
    stream = Stream(model, spec)
    for frame in converted["held_out"][0][0]:
        stream.step(frame[None, None])
    assert all(value.dtype == np.int8 for value in stream._values)


def test_stream_names_missing_tensor_in_one_line(converted):
    result = converted["equivalence"]["crnn"]["float32"]
    spec = {**result["manifest"]["streaming"], "frame_input": "nope:0"}
    with pytest.raises(EdgennError, match="nope") as error:
        Stream(open_model(result["tflite"], probe=False), spec)
    assert "\n" not in str(error.value)


def test_demo_speech_model_int8_through_convert(converted):
    """The floor on the committed model: int8 window and streaming accuracy on real speakers never trained on."""
    require(converted["demo"] is not None, "the demo speech model (edgenn/demo/speech_commands.keras)")
    manifest = converted["demo"]["int8"]["manifest"]
    evaluation = manifest["evaluation"]
    print("\ndemo int8 on the test speakers' real clips:", *(" ".join(row) for row in converted["demo"]["table"]), sep="\n  ")
    sidecar = json.loads(rnn_driver.DEMO.with_suffix(".json").read_text())
    assert manifest["task"] == "keywords" and manifest["labels"] == sidecar["labels"]
    assert manifest["audio_frontend"] == sidecar["frontend"] and manifest["quantization"]["mode"] == "int8"
    assert [s["kind"] for s in manifest["streaming"]["states"]] == ["ring", "recurrent"]  # Conv1D context, GRU
    assert "calibrated_window" in manifest["lowering"]
    window = evaluation["window_float_vs_quantized"]
    assert evaluation["samples"] >= 500 and window["accuracy"] >= 0.90 and window["drop_pp"] <= 1.0
    assert evaluation["accuracy_converted"] >= 0.90 and evaluation["accuracy_float"] - evaluation["accuracy_converted"] <= 0.01
    assert manifest["provenance"]["training_data"].startswith("real clips: Speech Commands dataset")
    assert evaluation["window_vs_streaming"]["argmax_agreement"] >= 0.99
    assert evaluation["window_vs_streaming"]["max_abs_diff"] <= 0.05
    contents = read_contents(converted["demo"]["int8"]["tflite"])
    assert "WHILE" not in contents.op_names and not contents.flex_ops


def test_demo_speech_model_on_real_speech_commands_clips(converted, fixtures_dir):
    """Other speakers than the dataset split: never used to train or tune."""
    require(converted["demo"] is not None, "the demo speech model")
    folder = fixtures_dir / "audio" / "speech_commands"
    require(folder.is_dir(), f"{folder}")
    from training.real_speech import FIXTURE_WORDS

    manifest = converted["demo"]["int8"]["manifest"]
    frontend = FrontEnd(FrontEndParams.from_dict(manifest["audio_frontend"]))
    model = open_model(converted["demo"]["int8"]["tflite"], probe=False)
    rows = []
    for name, words in FIXTURE_WORDS.items():
        samples, rate = read_wav(folder / name, rate=16000)
        for i, word in enumerate(words):
            window = window_features(samples[i * rate:(i + 1) * rate], frontend, 49)
            scores = run_steps(model, window, manifest["streaming"])[0]
            rows.append((word, manifest["labels"][int(np.argmax(scores))], round(float(np.max(scores)), 3)))
    print(f"\ndemo int8 on real Speech Commands segments: {sum(t == p for t, p, _ in rows)}/{len(rows)} correct", rows)
    assert len(rows) == sum(len(words) for words in FIXTURE_WORDS.values())
    assert sum(t == p for t, p, _ in rows) >= 8


def test_convert_cli_max_drop_gate_writes_no_file(converted, tmp_path):
    require(converted["demo"] is not None, "the demo speech model")
    _, evaluation = rnn_driver.demo_wav_folders()  # written (cached) by the conversion child
    output = tmp_path / "speech.tflite"
    result = run_cli(["convert", rnn_driver.DEMO, "-o", output, "--quantize", "float32", "--eval", evaluation,
                      "--max-drop", "-1"])  # float32 drops 0 pp: only a negative gate can fail it
    assert result.returncode == 1 and "--max-drop" in result.stderr and not output.exists(), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
