"""Flash to a local folder (SD card / mounted image), targets, inventory, profiles, C arrays and
systemd units — everything in flash that needs no SSH server."""

import json
import re
import shutil
import subprocess

import pytest

from conftest import require, run_cli
from edgenn.bundle import strip_bundle
from edgenn.errors import EdgennError
from edgenn.flash import actions, artifact, c_array, profiles, service
from edgenn.flash.inventory import Inventory
from edgenn.flash.layout import installed_model
from edgenn.flash.targets import parse, resolve
from flash_helpers import assert_complete, current, make_model


def test_local_folder_install_rollback_and_list(tmp_path):
    card = tmp_path / "card"
    card.mkdir()
    [target] = resolve([str(card)])
    assert target.kind == "local"
    v1, v2 = (artifact.load(make_model(tmp_path, v)) for v in ("1.0", "2.0"))
    assert actions.flash_one(v1, target, quiet=True).ok
    assert actions.flash_one(v2, target, quiet=True).ok
    assert current(card) == "2.0" and assert_complete(card)["sha256"] == v2.sha256
    assert installed_model("shapes", card) == card / "shapes" / "current" / "model.tflite"
    assert actions.rollback(target) == ("shapes", "2.0", "1.0")
    assert (card / "shapes" / "current" / "model.tflite").read_bytes() == v1.data
    assert [(m.version, m.active) for m in actions.models(target)] == [("1.0", True), ("2.0", False)]


def test_model_without_manifest_takes_stem_and_hash(tmp_path):
    path = tmp_path / "mobilenet_v2_edgetpu.tflite"
    path.write_bytes(b"\x18\x00\x00\x00TFL3" + bytes(1000))
    model = artifact.load(path)
    assert (model.name, model.version, model.edgetpu) == ("mobilenet_v2_edgetpu", model.sha256[:12], True)
    assert model.filename == "model_edgetpu.tflite"
    [target] = resolve([str(tmp_path / "card")], profile="rpi4")
    (tmp_path / "card").mkdir()
    result = actions.flash_one(model, target, quiet=True)
    assert result.ok and "no Edge TPU" in result.warnings[0]
    assert installed_model(model.name, tmp_path / "card").name == "model_edgetpu.tflite"


def test_cli_local_folder_and_errors(tmp_path):
    card = tmp_path / "card"
    card.mkdir()
    v1, v2 = make_model(tmp_path, "1.0"), make_model(tmp_path, "2.0")
    assert run_cli(["flash", v1, card]).returncode == 0
    done = run_cli(["flash", v2, card, "--profile", "coral-usb"])
    assert done.returncode == 0 and "shapes 2.0 is current (was 1.0)" in done.stdout
    assert "Edge TPU stays idle" in done.stderr
    listed = json.loads(run_cli(["models", card, "--json"]).stdout)
    assert [(r["version"], r["active"]) for r in listed] == [("1.0", False), ("2.0", True)]
    assert run_cli(["rollback", card, "shapes"]).stdout.strip().endswith("shapes 2.0 -> 1.0")
    missing = run_cli(["flash", v1, tmp_path / "nowhere/"])
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no such folder" in missing.stderr
    assert run_cli(["flash", v1]).returncode == 2
    assert run_cli(["flash", v1, card, "--profile", "pi9"]).returncode == 1


def test_c_array(tmp_path):
    model = artifact.load(make_model(tmp_path, "1.0", size=1001, name="kws-tiny"))
    header, source = c_array.write(model, tmp_path)
    assert (header.name, source.name) == ("kws_tiny_model.h", "kws_tiny_model.cc")
    text = source.read_text()
    flat = strip_bundle(model.data)
    assert "alignas(16) const unsigned char g_kws_tiny_model[] = {" in text
    assert f"const unsigned int g_kws_tiny_model_len = {len(flat)};" in text
    body = text[text.index("{") + 1:text.index("};")]
    assert bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", body)) == flat
    assert "extern const unsigned char g_kws_tiny_model[];" in header.read_text()
    if shutil.which("g++"):  # the files compile, and the array is aligned with the right length
        main = tmp_path / "main.cc"
        main.write_text('#include "kws_tiny_model.h"\n#include <cstdint>\nint main() { return '
                        '(reinterpret_cast<std::uintptr_t>(g_kws_tiny_model) % 16 == 0 && '
                        f'g_kws_tiny_model_len == {len(flat)} && g_kws_tiny_model[4] == \'T\') ? 0 : 1; }}\n')
        subprocess.run(["g++", "-std=c++11", "-o", tmp_path / "check", main, source], check=True, cwd=tmp_path)
        assert subprocess.run([tmp_path / "check"]).returncode == 0
    done = run_cli(["flash", make_model(tmp_path, "1.0"), tmp_path, "--format", "c"])
    assert done.returncode == 0 and (tmp_path / "shapes_model.cc").exists()


def test_service_unit(tmp_path):
    card = tmp_path / "models"
    card.mkdir()
    assert actions.flash_one(artifact.load(make_model(tmp_path, "1.0")), parse(str(card)), quiet=True).ok
    text = service.render("camera", "shapes", ["--source", "0", "--events", "mqtt://broker/a b"], base=card)
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert exec_start == (f"ExecStart={service.edgenn_executable()} camera {card}/shapes/current/model.tflite "
                          '--source 0 --events "mqtt://broker/a b"')
    assert "Restart=on-failure" in text and "WantedBy=default.target" in text
    system = service.render("listen", "shapes", base=card, system=True, user="pi")
    assert "User=pi" in system and "WantedBy=multi-user.target" in system and " listen " in system
    with pytest.raises(EdgennError, match="flash it first"):
        service.render("camera", "absent", base=card)
    require(shutil.which("systemd-analyze"), "systemd-analyze (apt-get install systemd)")
    for name, unit in (("edgenn-camera-shapes.service", text), ("edgenn-listen-shapes.service", system)):
        (tmp_path / name).write_text(unit)
        assert service.verify(tmp_path / name) == "", name
    dry = run_cli(["service", "install", "camera", "shapes", "--models-dir", card, "--dry-run", "--", "--source", "0"])
    assert dry.returncode == 0 and dry.stdout == service.render("camera", "shapes", ["--source", "0"], base=card)


def test_targets_and_inventory(tmp_path):
    t = parse("pi@10.0.0.5:2222")
    assert (t.kind, t.host, t.user, t.port) == ("ssh", "10.0.0.5", "pi", 2222)
    t = parse("[fe80::1]:22")
    assert (t.host, t.port, t.user) == ("fe80::1", 22, None)
    assert parse("./sd").kind == "local" and parse("raspberrypi.local").host == "raspberrypi.local"
    for bad in ("pi@host:99999", "a b", "pi@"):
        with pytest.raises(EdgennError):
            parse(bad)
    path = tmp_path / "fleet.toml"
    path.write_text('[defaults]\nuser = "pi"\n\n[devices.kitchen]\nhost = "10.0.0.2"\nprofile = "pi4"\n'
                    'groups = ["house"]\n\n[devices.garage]\nhost = "10.0.0.3"\nuser = "root"\nport = 2200\n'
                    'groups = ["house", "outside"]\n')
    targets = resolve(["house", "kitchen", "pi@10.0.0.9"], str(path))
    assert [(t.label, t.host, t.user, t.port, t.profile) for t in targets] == [
        ("kitchen", "10.0.0.2", "pi", None, "rpi4"), ("garage", "10.0.0.3", "root", 2200, None),
        ("pi@10.0.0.9", "10.0.0.9", "pi", None, None)]
    assert len(Inventory.load(path).lookup("all")) == 2
    for broken, message in (('[devices.x]\nhots = "a"\n', "unknown field 'hots'"),
                            ('[devices.x]\nuser = "pi"\n', "has no host"),
                            ('[devices.x]\nhost = "a"\nport = "22"\n', "should be a int"),
                            ('[devices.x]\nhost = "a"\nprofile = "pi9"\n', "unknown device profile"),
                            ('[devices.x\n', "not valid TOML")):
        path.write_text(broken)
        with pytest.raises(EdgennError, match=message):
            Inventory.load(path)


def test_profiles():
    assert profiles.get("Pi5").name == "rpi5" and profiles.get("coral-dev-board").has_tpu
    assert set(profiles.PROFILES) == {"rpi4", "rpi5", "rpi-zero2w", "rpi-coral-usb", "coral-devboard"}
    for profile in profiles.PROFILES.values():
        assert profile.threads >= 1 and profile.camera in ("picamera2", "v4l2")
        assert (profile.delegate is not None) == profile.has_tpu
    with pytest.raises(EdgennError, match="rpi4, rpi5"):
        profiles.get("jetson")
    zero = profiles.get("rpi-zero2w")
    assert any("memory" in w for w in profiles.fit_warnings(zero, False, 100_000_000))
    assert profiles.fit_warnings(profiles.get("rpi4"), False, 4_000_000) == []


def test_profile_detection(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGENN_PROFILE", raising=False)
    assert profiles.detect(tmp_path) is None
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\0")
    assert profiles.detect(tmp_path).name == "rpi4"
    coral = tmp_path / "sys/bus/usb/devices/2-1"
    coral.mkdir(parents=True)
    (coral / "idVendor").write_text("18d1\n")
    (coral / "idProduct").write_text("9302\n")
    assert profiles.detect(tmp_path).name == "rpi-coral-usb"
    shutil.rmtree(coral)
    (tmp_path / "proc/device-tree/model").write_bytes(b"Raspberry Pi Zero 2 W Rev 1.0\0")
    assert profiles.detect(tmp_path).name == "rpi-zero2w"
    monkeypatch.setenv("EDGENN_PROFILE", "pi5")
    assert profiles.detect(tmp_path).name == "rpi5"
    monkeypatch.setenv("EDGENN_PROFILE", "jetson")
    with pytest.raises(EdgennError, match="EDGENN_PROFILE='jetson' names no device profile"):
        profiles.detect(tmp_path)


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    from edgenn.flash.progress import transfer_bar

    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert transfer_bar("pi")[0] is None
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert transfer_bar("pi", quiet=True)[0] is None
    update, close = transfer_bar("pi")
    update(512 * 1024, 1024 * 1024)
    update(1024 * 1024, 1024 * 1024)
    close()
    assert "pi" in capsys.readouterr().err
