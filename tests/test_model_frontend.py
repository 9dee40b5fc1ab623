"""A front-end given as a .tflite model: TFLite Micro's micro_speech preprocessor (TFLM Signal ops, run by
edgenn's numpy graph runner) feeding micro_speech_quantized.tflite through `edgenn listen --frontend`."""

import json
import os

import numpy as np
import pytest

from conftest import require, run_cli
from edgenn.devices.model_frontend import ModelFrontEnd, ModelFrontEndParams
from edgenn.devices.speech import load_audio_model, make_scorer
from edgenn.runtime import open_model
from edgenn.wav import read_wav, write_wav

LABELS = ["_silence_", "_unknown_", "yes", "no"]  # tflite-micro evaluate.py order; "_" labels never fire
PREPROCESSORS = ["audio_preprocessor_int8.tflite", "audio_preprocessor_float.tflite"]


@pytest.fixture(scope="module")
def micro(fixtures_dir):
    return fixtures_dir / "models" / "tflite_micro"


@pytest.fixture(scope="module")
def clips(fixtures_dir):
    return fixtures_dir / "audio" / "tflite_micro"


@pytest.fixture(scope="module")
def expectations(fixtures_dir):
    return json.loads((fixtures_dir / "expected" / "documented_expectations.json").read_text())["keyword_spotting"]


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "micro_speech_labels.txt"
    path.write_text("\n".join(LABELS) + "\n")
    return path


def test_preprocessor_gives_the_documented_features(fixtures_dir, micro, expectations):
    """One 30 ms frame from fresh state, element for element as tflite-micro's audio_preprocessor_test."""
    classifier_input = open_model(micro / "micro_speech_quantized.tflite").inputs[0]
    params = ModelFrontEndParams.from_model(micro / "audio_preprocessor_int8.tflite", classifier_input)
    assert (params.window_samples, params.hop_samples, params.n_features) == (480, 320, 40)
    for name, expected in expectations[1]["inputs_expected"].items():
        samples, _ = read_wav(fixtures_dir / name)
        frame = ModelFrontEnd(params).push(samples)
        raw = np.round(frame[0] / params.scale + params.zero_point)  # back to the preprocessor's int8
        assert raw.astype(int).tolist() == expected, name


def test_frames_do_not_depend_on_block_sizes(micro, clips):
    """Audio arrives in blocks of any size; the preprocessor's noise estimate carries across them."""
    classifier_input = open_model(micro / "micro_speech_quantized.tflite").inputs[0]
    params = ModelFrontEndParams.from_model(micro / "audio_preprocessor_int8.tflite", classifier_input)
    samples, _ = read_wav(clips / "no_1000ms.wav")
    whole = ModelFrontEnd(params).push(samples)
    frontend = ModelFrontEnd(params)
    cuts = np.cumsum(np.random.default_rng(1).integers(1, 700, 60))
    blocks = [frontend.push(block) for block in np.split(samples, cuts[cuts < len(samples)])]
    assert whole.shape == (49, 40) and np.array_equal(np.concatenate(blocks), whole)
    frontend.reset()
    assert np.array_equal(frontend.push(samples), whole)


@pytest.mark.parametrize("preprocessor", PREPROCESSORS)
def test_first_window_scores_as_the_reference(micro, clips, labels_file, preprocessor):
    """A clip at the start of a stream: the first full window is tflite-micro's per-clip evaluation
    (no_1000ms: [0.0, 0.0547, 0.0, 0.9453]), with either preprocessor."""
    audio = load_audio_model(micro / "micro_speech_quantized.tflite", labels=labels_file,
                             frontend=micro / preprocessor)
    expected = {"yes": [0.0, 0.0, 0.9961, 0.0], "no": [0.0, 0.0547, 0.0, 0.9453],
                "noise": [0.9688, 0.0117, 0.0078, 0.0117], "silence": [0.3359, 0.2344, 0.2344, 0.1953]}
    for word, scores in expected.items():
        samples, _ = read_wav(clips / f"{word}_1000ms.wav")
        first = make_scorer(audio, "window", 100).push(np.concatenate([samples, np.zeros(1600, np.float32)]))[0]
        assert first[0] == 48 * 320 + 480 and np.allclose(first[1], scores, atol=0.02), (word, first[1])


@pytest.mark.parametrize("preprocessor", PREPROCESSORS)
def test_listen_hears_yes_and_no(micro, clips, labels_file, tmp_path, preprocessor):
    """Each clip between two seconds of recorded silence, as a microphone would hear it."""
    room, rate = read_wav(clips / "silence_1000ms.wav")
    heard = {}
    for word in ("yes", "no", "silence"):
        samples, _ = read_wav(clips / f"{word}_1000ms.wav")
        wav = tmp_path / f"{word}_padded.wav"
        write_wav(wav, np.concatenate([room, room, samples, room, room]), rate)
        result = run_cli(["listen", micro / "micro_speech_quantized.tflite", "--frontend", micro / preprocessor,
                          "--labels", labels_file, "--source", wav, "--events", "-"])
        assert result.returncode == 0, result.stderr
        events = [json.loads(line) for line in result.stdout.splitlines()]
        heard[word] = {e["label"] for e in events}
        assert all(2.0 <= e["stream_time"] <= 3.0 for e in events), events  # inside the word's clip
    print(f"\n{preprocessor}: {heard}")
    assert heard == {"yes": {"yes"}, "no": {"no"}, "silence": set()}


def _error_lines(result):
    return [line for line in result.stderr.splitlines() if "error" in line]


def test_micro_speech_without_frontend_names_the_fix(micro, clips, labels_file):
    """[1, 1960] int8 is 49 x 40 features, not a waveform: no silent run with meaningless scores."""
    result = run_cli(["listen", micro / "micro_speech_quantized.tflite", "--labels", labels_file,
                      "--source", clips / "yes_1000ms.wav"])
    lines = _error_lines(result)
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr
    assert "--frontend audio_preprocessor_int8.tflite" in lines[0] and "[1, 1960] int8" in lines[0]


def test_bad_frontend_model_is_one_line(micro, clips, labels_file, tmp_path):
    preprocessor = (micro / "audio_preprocessor_int8.tflite").read_bytes()
    cases = {"junk.tflite": b"not a model at all", "truncated.tflite": preprocessor[:3000],
             "scrambled.tflite": preprocessor[:100] + b"\xff" * 1900 + preprocessor[2000:]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for frontend, expected in [*((tmp_path / name, "--frontend") for name in cases),
                               (micro / "micro_speech_quantized.tflite", "not an audio front-end"),
                               (tmp_path / "missing.tflite", "no such file")]:
        result = run_cli(["listen", micro / "micro_speech_quantized.tflite", "--frontend", frontend,
                          "--labels", labels_file, "--source", clips / "yes_1000ms.wav"])
        lines = _error_lines(result)
        assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert expected in lines[0] and frontend.name in lines[0], lines[0]


def test_a_frontend_model_without_signal_ops_runs_on_the_runtime(micro, tmp_path):
    """Any front-end model of plain TFLite ops runs through edgenn.runtime, one window per hop."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        tf = None
    require(tf is not None, "tensorflow (builds the test's front-end model)")

    @tf.function(input_signature=[tf.TensorSpec([1, 480], tf.int16)])
    def band_levels(frame):  # mean |sample| of 40 blocks of 12 samples, as float features
        return tf.reduce_mean(tf.abs(tf.reshape(tf.cast(frame, tf.float32), [40, 12])), axis=1)

    path = tmp_path / "levels.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([band_levels.get_concrete_function()]).convert())
    classifier_input = open_model(micro / "micro_speech_quantized.tflite").inputs[0]
    params = ModelFrontEndParams.from_model(path, classifier_input)
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, 1600).astype(np.float32)
    frames = ModelFrontEnd(params).push(samples)
    pcm = np.round(samples * 32768)
    expected = [np.abs(pcm[start:start + 480]).reshape(40, 12).mean(axis=1) for start in (0, 320, 640, 960)]
    assert frames.shape == (4, 40) and np.allclose(frames, expected, rtol=1e-5)
