"""The on-device layout, the same over SSH and on a local folder:

    BASE/NAME/VERSION/model.tflite   (model_edgetpu.tflite for an Edge TPU model)
    BASE/NAME/VERSION/install.json   name, version, file, sha256, size, install time
    BASE/NAME/current -> VERSION     relative link, so a mounted SD card image stays valid

A version folder only ever appears complete: it is built under BASE/NAME/.tmp-*, its file's
sha256 is verified where it lives, then the folder is renamed into place. `current` is switched
by renaming a fresh link over it (rename(2) is atomic), so an interrupted flash leaves the
previous model active and at worst a .tmp-* entry that the next flash of NAME removes.
The file system is reached through an `fs` object (local.LocalFS or remote.RemoteFS).
"""

from __future__ import annotations

import json
import posixpath
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from edgenn.errors import EdgennError

DEFAULT_BASE = "~/.local/share/edgenn/models"
CURRENT = "current"
INFO = "install.json"
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    file: str | None
    sha256: str | None      # None for a folder that edgenn did not install (no install.json)
    size: int | None
    installed: float
    active: bool


class Store:
    """Install, list, roll back and prune models under BASE on one device."""

    def __init__(self, fs, base=DEFAULT_BASE):
        self.fs = fs
        self.base = fs.resolve(base)
        self.activated = None  # the version the last link switch made current

    def _path(self, *parts):
        for part in parts:
            if not part or "/" in part or part in (".", ".."):
                raise EdgennError(f"'{part}' is not a plain model name or version; check the name you gave")
        return posixpath.join(self.base, *parts)

    def install(self, artifact, keep=3, progress=None):
        """Put ARTIFACT in place and make it current; returns (previous version or None, reused, pruned)."""
        if keep < 1:
            raise EdgennError(f"--keep {keep}: keep at least 1 version (the current one)")
        folder = self._path(artifact.name)
        self.fs.makedirs(folder)
        self._remove_temporaries(artifact.name)
        previous = self.current(artifact.name)
        final = self._path(artifact.name, artifact.version)
        existing = self._info(artifact.name, artifact.version)
        reused = existing is not None
        if existing is not None and existing.get("sha256") != artifact.sha256:
            raise EdgennError(f"{artifact.name} {artifact.version} is already on the device with different "
                              "content; give the new model a new version (edgenn convert --version) or roll back")
        if not reused:
            staging = self._path(artifact.name, f"{TMP_PREFIX}{artifact.version}-{secrets.token_hex(4)}")
            self.fs.mkdir(staging)
            sha256 = self.fs.checksum_job()
            self.fs.write(posixpath.join(staging, artifact.filename), artifact.data, progress)
            found = sha256(posixpath.join(staging, artifact.filename))
            if found != artifact.sha256:
                self.fs.remove_tree(staging)
                raise EdgennError(f"{artifact.name} {artifact.version}: the uploaded file's sha256 on the device "
                                  f"({found[:12]}…) differs from the model's ({artifact.sha256[:12]}…); the copy was "
                                  "removed; flash again")
            info = {"name": artifact.name, "version": artifact.version, "file": artifact.filename,
                    "sha256": artifact.sha256, "size": len(artifact.data), "installed": time.time(),
                    "source": artifact.source}
            self.fs.write(posixpath.join(staging, INFO), json.dumps(info, indent=2).encode())
            self.fs.rename(staging, final)
        self._switch(artifact.name, artifact.version)
        pruned = self.prune(artifact.name, keep)
        return previous, reused, pruned

    def current(self, name):
        """The active version of NAME, or None."""
        target = self.fs.readlink(self._path(name, CURRENT))
        return posixpath.basename(target.rstrip("/")) if target else None

    def versions(self, name):
        """Installed versions of NAME, oldest first."""
        active = self.current(name)
        found = []
        for version in self.fs.listdir(self._path(name)):
            if version.startswith(".") or version == CURRENT:
                continue
            info = self._info(name, version) or {}
            found.append(Installed(name, version, info.get("file"), info.get("sha256"), info.get("size"),
                                   float(info.get("installed", 0)), version == active))
        return sorted(found, key=lambda item: (item.installed, item.version))

    def models(self):
        """Every installed version of every model on the device."""
        names = [n for n in self.fs.listdir(self.base) if not n.startswith(".")]
        return [item for name in sorted(names) for item in self.versions(name)]

    def rollback(self, name=None, to=None):
        """Make an earlier version current: TO, or the one installed before the current one.
        Returns (name, old version, new version)."""
        name = name or self._only_model()
        installed = [v for v in self.versions(name) if v.sha256]
        if not installed:
            raise EdgennError(f"no model '{name}' on the device; see `edgenn models TARGET`")
        active = next((v for v in installed if v.active), None)
        if to is not None:
            chosen = next((v for v in installed if v.version == to), None)
            if chosen is None:
                raise EdgennError(f"{name} has no version '{to}' on the device; "
                                  f"installed: {', '.join(v.version for v in installed)}")
        else:
            earlier = [v for v in installed if active is None or v.installed < active.installed]
            if not earlier:
                raise EdgennError(f"{name}: no version older than {active.version} on the device to roll back to")
            chosen = earlier[-1]
        self._switch(name, chosen.version)
        return name, active.version if active else None, chosen.version

    def prune(self, name, keep):
        """Remove all but the KEEP most recently installed versions (never the current one)."""
        installed = [v for v in self.versions(name) if v.sha256]
        kept = {v.version for v in installed if v.active}
        for item in reversed(installed):
            if len(kept) >= keep:
                break
            kept.add(item.version)
        removed = [v.version for v in installed if v.version not in kept]
        for version in removed:
            self.fs.remove_tree(self._path(name, version))
        return removed

    def _switch(self, name, version):
        link = self._path(name, f"{TMP_PREFIX}current-{secrets.token_hex(4)}")
        self.fs.symlink(version, link)
        self.fs.rename(link, self._path(name, CURRENT))
        self.activated = version

    def _info(self, name, version):
        raw = self.fs.read_bytes(self._path(name, version, INFO))
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _remove_temporaries(self, name):
        for entry in self.fs.listdir(self._path(name)):
            if entry.startswith(TMP_PREFIX):
                self.fs.remove_tree(self._path(name, entry))

    def _only_model(self):
        names = sorted({item.name for item in self.models()})
        if len(names) != 1:
            raise EdgennError("name the model to roll back (installed: "
                              f"{', '.join(names) or 'none'}), e.g. `edgenn rollback TARGET NAME`")
        return names[0]


def installed_model(name, base=DEFAULT_BASE):
    """Path of the current file of an installed model NAME on this machine, or None.
    Runners use it to accept a model's NAME in place of a path."""
    current = Path(base).expanduser() / name / CURRENT
    for filename in ("model_edgetpu.tflite", "model.tflite"):
        if (current / filename).is_file():
            return current / filename
    return None
