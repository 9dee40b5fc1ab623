"""`edgenn service install`: a systemd unit that runs `edgenn camera` or `edgenn listen` on the
current version of an installed model, restarting it when it fails. A user unit by default,
since flashed models live in the user's home; --system writes one for the whole machine."""

import getpass
import re
import shutil
import subprocess
import sys
from pathlib import Path

from edgenn.errors import EdgennError
from edgenn.flash.layout import DEFAULT_BASE, installed_model

MODES = ("camera", "listen")


def _quote(arg):
    """One ExecStart argument in systemd's syntax: % and $ escaped, quoted when it needs it."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not re.search(r'[\s"\'\\;]', arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def edgenn_executable():
    exe = Path(sys.executable).with_name("edgenn")
    return str(exe) if exe.exists() else (shutil.which("edgenn") or "/usr/local/bin/edgenn")


def unit_name(mode, model):
    return f"edgenn-{mode}-{re.sub(r'[^A-Za-z0-9_.-]', '_', model)}.service"


def model_path(model, base=DEFAULT_BASE):
    """The path the unit runs: an installed model NAME's file through its `current` link (so a new
    flash takes effect on the next restart), or MODEL itself when it is a .tflite path."""
    if "/" in model or model.endswith(".tflite"):
        path = Path(model).expanduser().absolute()
        if not path.is_file():
            raise EdgennError(f"{path}: no such model file; give a .tflite path or an installed model's name")
        return str(path)
    path = installed_model(model, base)
    if path is None:
        raise EdgennError(f"no installed model '{model}' under {base}; flash it first "
                          "(edgenn flash MODEL.tflite user@this-device) or give a .tflite path")
    return str(path)


def render(mode, model, args=(), base=DEFAULT_BASE, system=False, user=None, executable=None):
    """The unit file's text for running MODE on MODEL (see model_path) with extra ARGS."""
    if mode not in MODES:
        raise EdgennError(f"unknown mode '{mode}'; use one of: {', '.join(MODES)}")
    model_file = model_path(model, base)
    command = [executable or edgenn_executable(), mode, model_file, *args]
    lines = [
        "[Unit]",
        f"Description=edgenn {mode} on model {model}",
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=10",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_quote(a) for a in command),
        "Restart=on-failure",
        "RestartSec=5",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if system:
        lines.append(f"User={user or getpass.getuser()}")
        lines.append("SupplementaryGroups=video audio plugdev")
    lines += ["", "[Install]", f"WantedBy={'multi-user.target' if system else 'default.target'}", ""]
    return "\n".join(lines)


def unit_path(name, system=False):
    if system:
        return Path("/etc/systemd/system") / name
    return Path("~/.config/systemd/user").expanduser() / name


def systemctl(system, *args):
    """Run systemctl (--user unless SYSTEM); EdgennError with its message on failure."""
    exe = shutil.which("systemctl")
    if exe is None:
        raise EdgennError("systemctl not found: this device does not run systemd; start "
                          "`edgenn camera`/`edgenn listen` from your init system instead")
    argv = [exe] + ([] if system else ["--user"]) + list(args)
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise EdgennError(f"`{' '.join(argv[1:])}` failed: {done.stderr.strip() or done.returncode}; "
                          "for a user unit on a headless device run `loginctl enable-linger`")


def lingering(user):
    """Whether systemd keeps USER's services running without a login, so a user unit starts at boot;
    False when loginctl cannot tell (no systemd-logind)."""
    exe = shutil.which("loginctl")
    if exe is None:
        return False
    done = subprocess.run([exe, "show-user", user, "--property=Linger", "--value"], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == "yes"


def enable_lingering(user):
    exe = shutil.which("loginctl")
    done = subprocess.run([exe, "enable-linger", user], capture_output=True, text=True) if exe else None
    if done is None or done.returncode != 0:
        reason = "loginctl not found" if done is None else done.stderr.strip() or f"exit code {done.returncode}"
        raise EdgennError(f"cannot enable lingering for {user} ({reason}); run `sudo loginctl enable-linger {user}`")


def verify(path):
    """Problems `systemd-analyze verify` finds in a unit file ('' when clean); None without systemd-analyze."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        return None
    done = subprocess.run([exe, "verify", str(path)], capture_output=True, text=True)
    return done.stderr.strip() if done.returncode else ""
