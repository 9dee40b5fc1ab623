"""RNN converter: builtin-only conversion in every mode, window-vs-streaming equivalence, bad input.

All conversions run once, in one spawned child process (tests/rnn_driver.py)."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from edgenn.errors import EdgennError
from edgenn.modelfile import read_contents
from edgenn.runtime import open_model
from edgenn.streaming import Stream, run_steps

from conftest import require

import rnn_driver


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


@pytest.mark.xfail(reason="open: demo GRU int8 window vs int8 streaming agree on 198/200 held-out windows, "
                          "max |d| 0.17 (both int8 models differ from float by ~0.16 on the same borderline windows)")
def test_demo_speech_model_streams_like_its_window(converted):
    require(converted["demo"] is not None, "the demo speech model (edgenn/demo/speech_commands.keras) and espeak-ng")
    evaluation = converted["demo"]["int8"]["manifest"]["evaluation"]
    print("demo int8 streaming on held-out voices:", evaluation)
    assert converted["demo"]["windows"] == 200
    assert evaluation["window_vs_streaming"]["argmax_agreement"] == 1.0
    assert evaluation["window_vs_streaming"]["max_abs_diff"] <= 0.05
    contents = read_contents(converted["demo"]["int8"]["tflite"])
    assert "WHILE" not in contents.op_names and not contents.flex_ops
