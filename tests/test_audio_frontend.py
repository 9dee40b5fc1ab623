"""Audio front-end: tf.signal parity, incremental == whole clip, and the MLCommons KWS recipe."""

import os

import numpy as np
import pytest

from conftest import require
from edgenn.audio_frontend import FrontEnd, FrontEndParams
from edgenn.errors import EdgennError
from edgenn.wav import read_wav

PARITY_PARAMS = {
    "log-mel": FrontEndParams(),
    "mfcc": FrontEndParams(n_mfcc=13),
    "power-hamming": FrontEndParams(window="hamming", spectrum="power", n_mels=32, fmax=8000.0,
                                    log_offset=1e-3, n_fft=1024, window_samples=640, hop_samples=160),
    "mlcommons": FrontEndParams.mlcommons_kws(),
}


@pytest.fixture(scope="session")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow
    except ImportError:
        tensorflow = None
    require(tensorflow is not None, "tensorflow (the tf.signal reference)")
    return tensorflow


@pytest.fixture(scope="session")
def clips(fixtures_dir):
    speech, _ = read_wav(fixtures_dir / "audio/speech_commands/right_left_up.wav")
    t = np.arange(16000) / 16000
    chirp = 0.4 * np.sin(2 * np.pi * (100 + 3000 * t) * t) + 0.01 * np.random.default_rng(0).standard_normal(16000)
    return {"speech": speech, "chirp": chirp.astype(np.float32)}


def tf_signal_features(tf, x, p, dtype):
    """The reference: the same pipeline written with tf.signal, computed in `dtype`."""
    dtype = getattr(tf, dtype)
    x = tf.constant(x, dtype)
    if p.clip_samples:
        x = tf.pad(x[:p.clip_samples], [[0, max(0, p.clip_samples - int(x.shape[0]))]])
    if p.clip_normalise == "max":
        x = x / tf.reduce_max(x)
    window_fn = {"hann": tf.signal.hann_window, "hamming": tf.signal.hamming_window}[p.window]
    spectrum = tf.abs(tf.signal.stft(x, p.window_samples, p.hop_samples, p.n_fft, window_fn=window_fn))
    if p.spectrum == "power":
        spectrum = spectrum ** 2
    mel = tf.signal.linear_to_mel_weight_matrix(p.n_mels, p.n_fft // 2 + 1, p.sample_rate, p.fmin, p.fmax,
                                                dtype=dtype)
    out = tf.math.log(tf.tensordot(spectrum, mel, 1) + p.log_offset)
    if p.n_mfcc:
        out = tf.signal.mfccs_from_log_mel_spectrograms(out)[..., :p.n_mfcc]
    return out.numpy()


# float32 is how models are trained; power spectra with n_fft 1024 lose ~1.5e-4 to float32
# rounding inside TensorFlow, so that case is held to the float64 reference only.
@pytest.mark.parametrize("name, dtype", [(name, "float64") for name in sorted(PARITY_PARAMS)]
                         + [("log-mel", "float32"), ("mfcc", "float32"), ("mlcommons", "float32")])
@pytest.mark.parametrize("clip", ["speech", "chirp"])
def test_matches_tf_signal(tf, clips, name, dtype, clip):
    p = PARITY_PARAMS[name]
    x = clips[clip][:16000] if p.clip_samples else clips[clip]
    ours = FrontEnd(p).features(x)
    ref = tf_signal_features(tf, x, p, dtype)
    assert ours.shape == ref.shape == (p.frames_for(len(x)), p.n_features)
    assert np.abs(ours - ref).max() <= 1e-4


@pytest.mark.parametrize("name", ["log-mel", "mfcc", "power-hamming"])
def test_incremental_equals_whole_clip(clips, name):
    p = PARITY_PARAMS[name]
    x = clips["speech"]
    whole = FrontEnd(p).features(x)
    stream = FrontEnd(p)
    rng = np.random.default_rng(1)
    cuts = np.sort(rng.integers(0, len(x), 40))
    parts = [stream.push(block) for block in np.split(x, cuts)]
    assert all(part.shape[1] == p.n_features for part in parts)
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    # Only the samples a future frame needs are kept.
    assert len(stream._pending) < p.window_samples


def test_push_keeps_streams_apart(clips):
    fe = FrontEnd()
    fe.push(clips["chirp"][:1000])
    fe.reset()
    np.testing.assert_array_equal(fe.push(clips["speech"]), FrontEnd().features(clips["speech"]))


def test_feature_normalisation_and_short_clip():
    base, norm = FrontEndParams(), FrontEndParams(feature_mean=-5.0, feature_std=4.0)
    x = np.random.default_rng(2).standard_normal(4000).astype(np.float32) * 0.1
    np.testing.assert_allclose(FrontEnd(norm).features(x), (FrontEnd(base).features(x) + 5.0) / 4.0, atol=1e-5)
    assert FrontEnd().features(np.zeros(100)).shape == (0, 40)


def test_params_round_trip_and_validation():
    import json
    p = FrontEndParams.mlcommons_kws()
    assert FrontEndParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(EdgennError, match="unknown audio front-end parameter"):
        FrontEndParams.from_dict({"hop": 10})
    with pytest.raises(EdgennError, match="fmax"):
        FrontEndParams(fmax=9000.0)
    with pytest.raises(EdgennError, match="whole clip"):
        FrontEnd(p).push(np.zeros(1000))


@pytest.fixture(scope="session")
def kws_model(fixtures_dir):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = None
    require(Interpreter is not None, "ai_edge_litert")
    interpreter = Interpreter(model_path=str(fixtures_dir / "models/mlcommons_tiny/kws_ref_model.tflite"))
    interpreter.allocate_tensors()
    labels = (fixtures_dir / "labels/speech_commands/kws_12_labels.txt").read_text().split()
    return interpreter, labels


def classify_kws(kws_model, clip):
    interpreter, labels = kws_model
    features = FrontEnd(FrontEndParams.mlcommons_kws()).features(clip)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    q = np.clip(np.trunc(features / scale + zero), -128, 127).astype(np.int8)
    interpreter.set_tensor(inp["index"], q.reshape(inp["shape"]))
    interpreter.invoke()
    return labels[int(np.argmax(interpreter.get_tensor(out["index"])))]


@pytest.mark.parametrize("name, words", [("yes.wav", ["yes"]), ("down.wav", ["down"]),
                                         ("right_left_up.wav", ["right", "left", "up"])])
def test_mlcommons_kws_reference_model(fixtures_dir, kws_model, name, words):
    samples, rate = read_wav(fixtures_dir / "audio/speech_commands" / name, rate=16000)
    heard = [classify_kws(kws_model, samples[i * rate:(i + 1) * rate]) for i in range(len(words))]
    assert heard == words
