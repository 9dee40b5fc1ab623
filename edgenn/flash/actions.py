"""Flash, roll back and list models on one target (an SSH device or a local folder)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from edgenn.errors import EdgennError
from edgenn.flash import profiles
from edgenn.flash.layout import DEFAULT_BASE, Store
from edgenn.flash.progress import transfer_bar
from edgenn.flash.ssh import SshOptions


@dataclass
class Result:
    target: str
    ok: bool
    name: str | None = None
    version: str | None = None
    previous: str | None = None
    message: str = ""
    seconds: float = 0.0
    warnings: list = field(default_factory=list)


@contextmanager
def open_store(target, ssh_options=SshOptions()):
    """A layout.Store on TARGET; connection failures become EdgennError naming the device."""
    if target.kind == "local":
        from edgenn.flash.local import LocalFS

        if not os.path.isdir(target.path):
            raise EdgennError(f"{target.path}: no such folder; mount the SD card or image, or create the folder")
        try:
            yield Store(LocalFS(), target.path)
        except OSError as exc:
            raise EdgennError(f"{target.path}: {exc.strerror or exc} ({getattr(exc, 'filename', '')}); "
                              "check the folder is writable and has space") from None
        return

    import paramiko

    from edgenn.flash.remote import RemoteFS
    from edgenn.flash.ssh import connect

    client, label = connect(target.host, target.port, target.user, ssh_options)
    try:
        fs = RemoteFS(client, label, timeout=max(ssh_options.timeout, 60))
        yield Store(fs, target.remote_dir or DEFAULT_BASE)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise EdgennError(f"{label}: connection lost or device error ({exc or type(exc).__name__}); "
                          "check the device and try again") from None
    finally:
        client.close()


def fit_warnings(artifact, target):
    if not target.profile:
        return []
    profile = profiles.get(target.profile)
    return [f"{target.label}: {w}" for w in profiles.fit_warnings(profile, artifact.edgetpu, len(artifact.data))]


def flash_one(artifact, target, ssh_options=SshOptions(), keep=3, quiet=False, position=0):
    """Install ARTIFACT on TARGET; never raises, the outcome is in the Result."""
    start = time.monotonic()
    result = Result(target.label, False, artifact.name, artifact.version, warnings=fit_warnings(artifact, target))
    update, close = transfer_bar(target.label, quiet, position)
    store = None
    try:
        with open_store(target, ssh_options) as store:
            result.previous, reused, pruned = store.install(artifact, keep, update)
        result.ok = True
        result.message = ("already there, made current" if reused else "installed") + \
            (f"; removed {', '.join(pruned)}" if pruned else "")
    except EdgennError as exc:
        if store is not None and store.activated == artifact.version:
            # Only the pruning of old versions was cut short: the new model is in place and current.
            result.ok = True
            result.message = f"installed; old versions not pruned ({exc})"
        else:
            result.message = f"{exc}; the previous model stays active"
    except Exception as exc:  # one device's unexpected failure must not stop the others
        result.message = f"unexpected error: {type(exc).__name__}: {exc}"
    finally:
        close()
    result.seconds = time.monotonic() - start
    return result


def rollback(target, name=None, to=None, ssh_options=SshOptions()):
    """Switch TARGET back to an earlier version; returns (name, old version, new version)."""
    with open_store(target, ssh_options) as store:
        return store.rollback(name, to)


def models(target, ssh_options=SshOptions()):
    """Models installed on TARGET (layout.Installed items)."""
    with open_store(target, ssh_options) as store:
        return store.models()
