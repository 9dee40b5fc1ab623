"""Runners take an installed model's NAME as well as a path."""

from edgenn.devices.run_control import resolve_model


def test_installed_name_resolves_to_the_current_version(tmp_path, monkeypatch, fixtures_dir):
    monkeypatch.setenv("HOME", str(tmp_path))
    version = tmp_path / ".local/share/edgenn/models/digits/3"
    version.mkdir(parents=True)
    (version / "model.tflite").write_bytes((fixtures_dir / "models/coral/keras_lstm_mnist_ptq.tflite").read_bytes())
    (version.parent / "current").symlink_to("3")
    assert resolve_model("digits") == version.parent / "current" / "model.tflite"
    assert str(resolve_model("other.tflite")) == "other.tflite"  # a path stays a path, even when missing
