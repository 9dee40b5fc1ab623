"""Flash over SSH against real sshd instances on 127.0.0.1: install, list, roll back, prune,
connections cut mid-flash, tampered uploads, host key checks, and a fleet with a device down."""

import json
import os
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import paramiko
import pytest

from conftest import require, run_cli
from edgenn.errors import EdgennError
from edgenn.flash import actions, artifact
from edgenn.flash.ssh import SshOptions
from edgenn.flash.targets import Target
from flash_helpers import assert_complete, current, make_model
from sshd_server import SSHD, CuttingProxy, Sshd, keygen


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    require(os.path.exists(SSHD), "OpenSSH server (apt-get install openssh-server)")
    require(shutil.which("ssh-keygen"), "ssh-keygen (apt-get install openssh-client)")
    root = tmp_path_factory.mktemp("sshlab")
    client_key = keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    servers = [Sshd(root / f"sshd{i}", root / "authorized_keys").start() for i in range(3)]
    known_hosts = root / "known_hosts"
    known_hosts.write_text("".join(s.known_hosts_line() for s in servers))
    ssh_config = root / "ssh_config"
    ssh_config.write_text(f"Host *\n  User root\n  IdentityFile {client_key}\n  UserKnownHostsFile {known_hosts}\n")
    models = root / "models"
    models.mkdir()
    yield SimpleNamespace(root=root, servers=servers, known_hosts=known_hosts, ssh_config=ssh_config,
                          options=SshOptions(ssh_config=str(ssh_config)), models=models)
    for server in servers:
        server.stop()


def device(lab, tmp_path, port=None):
    """A Target on the first sshd whose models folder is TMP_PATH/device."""
    return Target(label="dev", kind="ssh", host="127.0.0.1", port=port or lab.servers[0].port,
                  remote_dir=str(tmp_path / "device"))


def test_flash_list_rollback_and_prune(lab, tmp_path):
    target = device(lab, tmp_path)
    v1, v2, v3 = (artifact.load(make_model(tmp_path, v)) for v in ("1.0", "2.0", "3.0"))
    base = tmp_path / "device"

    result = actions.flash_one(v1, target, lab.options, quiet=True)
    assert result.ok, result.message
    assert current(base) == "1.0"
    assert (base / "shapes" / "1.0" / "model.tflite").read_bytes() == v1.data
    assert assert_complete(base)["sha256"] == v1.sha256

    listed = actions.models(target, lab.options)
    assert [(m.name, m.version, m.sha256, m.active) for m in listed] == [("shapes", "1.0", v1.sha256, True)]

    result = actions.flash_one(v2, target, lab.options, quiet=True)
    assert result.ok and result.previous == "1.0"
    assert current(base) == "2.0"
    assert [(m.version, m.active) for m in actions.models(target, lab.options)] == [("1.0", False), ("2.0", True)]

    assert actions.rollback(target, "shapes", ssh_options=lab.options) == ("shapes", "2.0", "1.0")
    assert current(base) == "1.0"
    assert_complete(base)
    with pytest.raises(EdgennError, match="no version older"):
        actions.rollback(target, ssh_options=lab.options)

    result = actions.flash_one(v3, target, lab.options, keep=2, quiet=True)
    assert result.ok and "removed 1.0" in result.message
    assert sorted(p.name for p in (base / "shapes").iterdir()) == ["2.0", "3.0", "current"]
    assert current(base) == "3.0"
    assert (base / "shapes" / "3.0" / "model.tflite").read_bytes() == v3.data

    again = actions.flash_one(v3, target, lab.options, quiet=True)
    assert again.ok and again.message.startswith("already there")
    (tmp_path / "other").mkdir()
    clash = artifact.load(make_model(tmp_path / "other", "3.0", seed=1))
    refused = actions.flash_one(clash, target, lab.options, quiet=True)
    assert not refused.ok and "different content" in refused.message


def test_cut_connection_never_breaks_current(lab, tmp_path):
    """The connection dropped at 20 seeded points: `current` is always a complete verified version,
    and the next good flash leaves no temporary files."""
    base = tmp_path / "device"
    direct = device(lab, tmp_path)
    first = artifact.load(make_model(tmp_path, "0"))
    assert actions.flash_one(first, direct, lab.options, quiet=True).ok
    proxy = CuttingProxy(lab.servers[0].port)
    through_proxy = device(lab, tmp_path, port=proxy.port)
    # The proxy's port is a different known_hosts name: trust the same key under it.
    known = lab.root / "known_hosts_proxy"
    known.write_text(lab.known_hosts.read_text().replace(f":{lab.servers[0].port} ", f":{proxy.port} ", 1))
    options = SshOptions(ssh_config=str(lab.ssh_config), known_hosts=str(known))
    # Measure a whole flash through the proxy in the state the cut attempts meet: one leftover
    # temporary folder (from the attempt before) that the flash removes first.
    leftover = base / "shapes" / ".tmp-probe-0"
    leftover.mkdir()
    (leftover / "model.tflite").write_bytes(b"x" * 60_000)
    probe = artifact.load(make_model(tmp_path, "probe", size=60_000))
    assert actions.flash_one(probe, through_proxy, options, quiet=True).ok
    proxy.wait()
    total = proxy.last_total
    rng = random.Random(7)
    # Half anywhere, half in the last few kB: end of upload, checksum, rename, link switch, pruning.
    cuts = [rng.randrange(100, total) for _ in range(10)] + [rng.randrange(total - 5000, total) for _ in range(10)]
    landed = []
    for i, cut in enumerate(sorted(cuts)):
        proxy.limit = cut
        model = artifact.load(make_model(tmp_path, f"cut{i}", size=60_000))
        result = actions.flash_one(model, through_proxy, options, keep=3, quiet=True)
        assert result.ok or "connection lost" in result.message or "cannot connect" in result.message, result.message
        info = assert_complete(base)
        assert info["version"] in {"0", "probe", model.version} | {f"cut{j}" for j in range(i)}
        landed.append((base / "shapes" / model.version).exists())
        assert result.ok == (current(base) == model.version), (result.ok, result.message)
    proxy.limit = None
    assert 1 <= landed.count(True) < 20, landed  # some cuts came after the upload, most before
    final = artifact.load(make_model(tmp_path, "final"))
    assert actions.flash_one(final, direct, lab.options, quiet=True).ok
    assert current(base) == "final" and assert_complete(base)["version"] == "final"
    assert not [p.name for p in (base / "shapes").iterdir() if p.name.startswith(".")]
    proxy.close()


def test_tampered_upload_is_refused(lab, tmp_path, monkeypatch):
    base = tmp_path / "device"
    target = device(lab, tmp_path)
    good, next_one = (artifact.load(make_model(tmp_path, v)) for v in ("1.0", "2.0"))
    assert actions.flash_one(good, target, lab.options, quiet=True).ok
    write = paramiko.SFTPFile.write

    def corrupt(self, data):  # one byte changed on its way into the model file
        data = bytes(data)
        if data[:8] == next_one.data[:8]:
            data = data[:50] + bytes([data[50] ^ 0xFF]) + data[51:]
        return write(self, data)

    monkeypatch.setattr(paramiko.SFTPFile, "write", corrupt)
    result = actions.flash_one(next_one, target, lab.options, quiet=True)
    assert not result.ok and "sha256" in result.message
    assert current(base) == "1.0"
    assert sorted(p.name for p in (base / "shapes").iterdir()) == ["1.0", "current"]


def test_unknown_host_refused_unless_accepted(lab, tmp_path):
    known = tmp_path / "known_hosts"
    target = device(lab, tmp_path)
    options = SshOptions(ssh_config=str(lab.ssh_config), known_hosts=str(known))
    with pytest.raises(EdgennError, match="--accept-new-host"):
        actions.models(target, options)
    assert not known.exists()
    accepting = SshOptions(ssh_config=str(lab.ssh_config), known_hosts=str(known), accept_new_host=True)
    assert actions.models(target, accepting) == []
    assert known.read_text().split()[1:] == lab.servers[0].known_hosts_line().split()[1:]
    assert actions.models(target, options) == []


def test_changed_host_key_refused_with_warning(lab, tmp_path):
    other = keygen(tmp_path / "other_host_key")
    kind, key = Path(f"{other}.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{lab.servers[0].port} {kind} {key}\n")
    options = SshOptions(ssh_config=str(lab.ssh_config), known_hosts=str(known), accept_new_host=True)
    with pytest.raises(EdgennError) as error:
        actions.models(device(lab, tmp_path), options)
    assert "CHANGED" in str(error.value) and "man-in-the-middle" in str(error.value)
    assert known.read_text() == f"[127.0.0.1]:{lab.servers[0].port} {kind} {key}\n"


def test_fleet_with_one_device_down(lab, tmp_path):
    """Three sshd instances as an inventory group, one stopped: two succeed, one fails, exit 1."""
    inventory = tmp_path / "fleet.toml"
    inventory.write_text("".join(
        f'[devices.pi{i}]\nhost = "127.0.0.1"\nport = {s.port}\nprofile = "rpi4"\ngroups = ["fleet"]\n'
        f'remote_dir = "{tmp_path / f"pi{i}"}"\n\n' for i, s in enumerate(lab.servers)))
    model = make_model(tmp_path, "1.0")
    lab.servers[2].stop()
    done = run_cli(["flash", model, "fleet", "--inventory", inventory, "--ssh-config", lab.ssh_config],
                   timeout=120)
    assert done.returncode == 1, done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[1:]}
    assert rows == {"pi0": "ok", "pi1": "ok", "pi2": "FAILED"}, done.stdout
    assert "1 of 3 devices failed: pi2" in done.stderr
    for i in (0, 1):
        assert current(tmp_path / f"pi{i}") == "1.0"
        assert_complete(tmp_path / f"pi{i}")
    assert not (tmp_path / "pi2").exists()
    listed = run_cli(["models", "pi0", "-i", inventory, "--ssh-config", lab.ssh_config, "--json"])
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["active"] is True
    group = run_cli(["models", "fleet", "-i", inventory, "--ssh-config", lab.ssh_config], timeout=120)
    assert group.returncode == 1, group.stderr
    assert [line.split()[:3] for line in group.stdout.splitlines()] == [
        ["*", "pi0", "shapes"], ["*", "pi1", "shapes"], ["pi2", "FAILED:", f"root@127.0.0.1:{lab.servers[2].port}:"]]
    assert group.stderr == "edgenn: error: 1 of 3 devices could not be listed: pi2; see above\n"
