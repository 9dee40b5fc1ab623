"""Runners take an installed model's NAME as well as a path, and defaults from the board profile."""

from edgenn.devices.run_control import preferred_runtime, resolve_model


def test_installed_name_resolves_to_the_current_version(tmp_path, monkeypatch, fixtures_dir):
    monkeypatch.setenv("HOME", str(tmp_path))
    version = tmp_path / ".local/share/edgenn/models/digits/3"
    version.mkdir(parents=True)
    (version / "model.tflite").write_bytes((fixtures_dir / "models/coral/keras_lstm_mnist_ptq.tflite").read_bytes())
    (version.parent / "current").symlink_to("3")
    assert resolve_model("digits") == version.parent / "current" / "model.tflite"
    assert str(resolve_model("other.tflite")) == "other.tflite"  # a path stays a path, even when missing


def test_the_board_profile_picks_the_runtime_unless_one_is_asked_for():
    from edgenn.flash import profiles
    from edgenn.runtime import runtime_installed
    assert preferred_runtime(None, None) is None  # a PC: the first runtime installed
    assert preferred_runtime(None, profiles.get("rpi4")) == "litert"
    assert preferred_runtime("tensorflow", profiles.get("rpi4")) == "tensorflow"
    devboard = profiles.get("coral-devboard")  # prefers tflite_runtime, taken only where it is installed
    assert preferred_runtime(None, devboard) == ("tflite_runtime" if runtime_installed("tflite_runtime") else None)
