"""The committed demo speech-command model: small, streamable, its front-end recorded, accurate on held-out voices."""

import json
import os
import sys

import numpy as np
import pytest

from conftest import REPO, require, require_exe
from edgenn.audio_frontend import FrontEnd, FrontEndParams

DEMO = REPO / "edgenn" / "demo"


@pytest.fixture(scope="session")
def meta():
    return json.loads((DEMO / "speech_commands.json").read_text())


@pytest.fixture(scope="session")
def model():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError:
        keras = None
    require(keras is not None, "keras (tensorflow) to load the demo model")
    return keras.saving.load_model(DEMO / "speech_commands.keras")


def test_metadata(meta):
    params = FrontEndParams.from_dict(meta["frontend"])
    assert meta["input_shape"] == [params.frames_for(params.sample_rate), params.n_features] == [49, 40]
    assert meta["labels"][:2] == ["_silence_", "_unknown_"] and len(meta["labels"]) == 12
    assert meta["held_out"]["float_accuracy"] >= 0.93
    assert (DEMO / "speech_commands.keras").stat().st_size < 500_000


def test_model_streams(model, meta):
    assert list(model.input_shape[1:]) == meta["input_shape"]
    assert model.output_shape[-1] == len(meta["labels"])
    for layer in model.layers:
        assert not getattr(layer, "stateful", False) and "Bidirectional" not in type(layer).__name__


def test_accuracy_on_fresh_held_out_voices(model, meta):
    require_exe("espeak-ng")
    sys.path.insert(0, str(REPO))
    from training.speech_data import LABELS, make_dataset
    assert list(LABELS) == meta["labels"]
    windows, labels = make_dataset(6, held_out=True, seed=1234)  # a seed the training never used
    fe = FrontEnd(FrontEndParams.from_dict(meta["frontend"]))
    predicted = model.predict(np.stack([fe.features(w) for w in windows]), verbose=0).argmax(axis=1)
    assert np.mean(predicted == labels) >= 0.85
