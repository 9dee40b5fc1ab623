"""RNN lowering refusals and WAV-folder data: each bad input gives one clear line (no conversion)."""

import numpy as np
import pytest

from edgenn.audio_frontend import FrontEnd, FrontEndParams
from edgenn.errors import EdgennError
from edgenn.wav import read_wav, write_wav

import keras
import rnn_models
from edgenn.converters import rnn_lower


def one_line(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def test_unknown_time_length_needs_frames():
    inputs = keras.Input((None, 40))
    model = keras.Model(inputs, keras.layers.Dense(12)(keras.layers.GRU(8)(inputs)))
    with pytest.raises(EdgennError) as excinfo:
        rnn_lower.analyze(model)
    assert "--frames" in one_line(excinfo)
    assert rnn_lower.analyze(model, frames=49).frames == 49


def test_unsupported_layer_is_named_with_the_supported_set():
    inputs = keras.Input((49, 40))
    x = keras.layers.MultiHeadAttention(2, 8, name="attn")(inputs, inputs)
    model = keras.Model(inputs, keras.layers.Dense(12)(keras.layers.GRU(8)(x)))
    with pytest.raises(EdgennError) as excinfo:
        rnn_lower.analyze(model)
    message = one_line(excinfo)
    assert "'attn'" in message and "MultiHeadAttention" in message and "LSTM, GRU, SimpleRNN" in message


def test_branches_are_refused():
    inputs = keras.Input((49, 40))
    x = keras.layers.GRU(8, return_sequences=True)(inputs)
    x = keras.layers.Add()([x, keras.layers.Dense(8)(inputs)])
    with pytest.raises(EdgennError) as excinfo:
        rnn_lower.analyze(keras.Model(inputs, keras.layers.GRU(8)(x)))
    assert "no branches" in one_line(excinfo) or "cannot be lowered" in one_line(excinfo)


def test_bidirectional_cannot_stream():
    with pytest.raises(EdgennError) as excinfo:
        rnn_lower.build_step_model(rnn_models.build("bilstm", frames=8))
    assert "window mode" in one_line(excinfo)


def test_stateful_layer_is_explained():
    plan = rnn_lower.analyze(rnn_models.build("lstm", frames=8, stateful=True))
    assert len(plan.notes) == 1 and "stateful=True" in plan.notes[0]


def test_float_step_model_reproduces_window_in_keras():
    model = rnn_models.build("crnn", frames=12)
    windows, _ = rnn_models.separable_windows(4, 3, frames=12)
    step, spec = rnn_lower.build_step_model(model, batch_size=None)
    scores, pairs = rnn_lower.step_through(step, windows, spec)
    assert len(pairs) == 12 and spec["warmup_frames"] == 2
    assert np.max(np.abs(scores - model.predict(windows, verbose=0))) <= 1e-5


@pytest.fixture(scope="module")
def wav_folder(tmp_path_factory):
    """yes/ at 16 kHz and no/ at 22.05 kHz (resampled on load), one damaged file made separately."""
    root = tmp_path_factory.mktemp("wavs")
    t16, t22 = np.arange(16000) / 16000, np.arange(22050) / 22050
    for label in ("yes", "no"):
        (root / label).mkdir()
    write_wav(root / "yes" / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t16), 16000)
    write_wav(root / "no" / "a.wav", 0.5 * np.sin(2 * np.pi * 1200 * t22), 22050)
    write_wav(root / "no" / "b16k.wav", 0.5 * np.sin(2 * np.pi * 1200 * t16), 16000)
    return root


def test_wav_folder_windows_and_resampling(wav_folder):
    from edgenn.converters.audio_data import load_windows
    params = FrontEndParams()
    windows, labels, names = load_windows(wav_folder, params, 49)
    assert windows.shape == (3, 49, 40) and names == ["no", "yes"] and sorted(labels) == [0, 0, 1]
    resampled, native = windows[0], windows[1]  # no/a.wav (22.05 kHz) vs no/b16k.wav
    assert np.median(np.abs(resampled - native)) < 0.05
    assert np.array_equal(windows[2], FrontEnd(params).features(read_wav(wav_folder / "yes" / "a.wav")[0]))


def test_corrupt_wav_is_one_line(wav_folder, tmp_path):
    from edgenn.converters.audio_data import load_windows
    (tmp_path / "yes").mkdir()
    (tmp_path / "yes" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    with pytest.raises(EdgennError) as excinfo:
        load_windows(tmp_path, FrontEndParams(), 49)
    assert "broken.wav" in one_line(excinfo)


def test_subfolder_outside_labels_is_refused(wav_folder):
    from edgenn.converters.audio_data import load_windows
    with pytest.raises(EdgennError) as excinfo:
        load_windows(wav_folder, FrontEndParams(), 49, labels=["yes"])
    assert "'no'" in one_line(excinfo)
