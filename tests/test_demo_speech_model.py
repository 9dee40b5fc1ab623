"""The committed demo speech-command model: small, streamable, its front-end and data credit recorded, accurate
on real speakers it never heard."""

import json
import os
import sys

import numpy as np
import pytest

from conftest import REPO, require
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
    assert meta["float_accuracy"]["test_speakers"] >= 0.90 and meta["float_accuracy"]["test_clips"] >= 500
    assert "CC BY 4.0" in meta["provenance"]["training_data"] and "MLCommons" in meta["provenance"]["distillation"]
    assert (DEMO / "speech_commands.keras").stat().st_size < 1_500_000


def test_model_streams(model, meta):
    assert list(model.input_shape[1:]) == meta["input_shape"]
    assert model.output_shape[-1] == len(meta["labels"])
    for layer in model.layers:
        assert not getattr(layer, "stateful", False) and "Bidirectional" not in type(layer).__name__


def test_float_accuracy_on_test_speakers(model, meta, fixtures_dir):
    """The floor: 12 classes, every clip of the test speakers (by speaker hash, never trained on or tuned with)."""
    sys.path.insert(0, str(REPO))
    from training.real_speech import fit_window, load_clips
    from training.speech_data import LABELS
    assert list(LABELS) == meta["labels"]
    clips, labels, speakers = load_clips("test", fixtures_dir)
    fe = FrontEnd(FrontEndParams.from_dict(meta["frontend"]))
    predicted = model.predict(np.stack([fe.features(fit_window(c)) for c in clips]), verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == labels))
    print(f"\nfloat accuracy on {len(clips)} clips of {len(set(speakers))} test speakers: {accuracy:.4f}")
    assert accuracy >= 0.90 and accuracy == pytest.approx(meta["float_accuracy"]["test_speakers"], abs=0.005)
