"""The device inventory: a TOML file naming devices and the groups they belong to.

    [defaults]                 # optional, applies to every device
    user = "pi"

    [devices.kitchen]
    host = "192.168.1.20"      # required
    user = "pi"                # default: ssh config, then your login name
    port = 22
    profile = "rpi4"           # see edgenn.flash.profiles
    groups = ["house", "cameras"]
    remote_dir = "~/.local/share/edgenn/models"

Every device is also in the group "all".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgenn.errors import EdgennError
from edgenn.flash import profiles

FIELDS = {"host": str, "user": str, "port": int, "profile": str, "groups": list, "remote_dir": str}
DEFAULT_PATHS = ("edgenn-inventory.toml", "~/.config/edgenn/inventory.toml")


@dataclass(frozen=True)
class Device:
    name: str
    host: str
    user: str | None = None
    port: int | None = None
    profile: str | None = None
    groups: tuple = ()
    remote_dir: str | None = None


def _toml(path):
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError:
            raise EdgennError("reading an inventory needs Python 3.11+ or `pip install tomli`") from None
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise EdgennError(f"{path}: cannot read inventory ({exc.strerror}); check --inventory") from None
    except tomllib.TOMLDecodeError as exc:
        raise EdgennError(f"{path}: not valid TOML ({exc}); fix the inventory file") from None


def default_path():
    """--inventory's default: $EDGENN_INVENTORY, else the first existing DEFAULT_PATHS entry, else None."""
    if os.environ.get("EDGENN_INVENTORY"):
        return os.environ["EDGENN_INVENTORY"]
    return next((str(Path(p).expanduser()) for p in DEFAULT_PATHS if Path(p).expanduser().is_file()), None)


class Inventory:
    def __init__(self, devices, path="inventory"):
        self.devices = devices
        self.path = path
        self.groups = {"all": [d.name for d in devices.values()]}
        for device in devices.values():
            for group in device.groups:
                if group in devices:
                    raise EdgennError(f"{path}: '{group}' is both a device and a group; rename one")
                self.groups.setdefault(group, []).append(device.name)

    @classmethod
    def load(cls, path):
        data = _toml(path)
        defaults = data.get("defaults", {})
        unknown = set(data) - {"defaults", "devices"}
        if unknown:
            raise EdgennError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; "
                              "use [defaults] and [devices.NAME]")
        devices = {}
        for name, fields in data.get("devices", {}).items():
            merged = {**defaults, **fields}
            for key, value in merged.items():
                kind = FIELDS.get(key)
                if kind is None:
                    raise EdgennError(f"{path}: device '{name}' has unknown field '{key}'; "
                                      f"known fields: {', '.join(FIELDS)}")
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise EdgennError(f"{path}: device '{name}' field '{key}' should be a {kind.__name__}")
            if "host" not in merged:
                raise EdgennError(f"{path}: device '{name}' has no host; add host = \"ADDRESS\"")
            if "profile" in merged:
                merged["profile"] = profiles.get(merged["profile"]).name
            merged["groups"] = tuple(merged.get("groups", ()))
            devices[name] = Device(name=name, **merged)
        return cls(devices, path)

    def lookup(self, name):
        """Devices called NAME or in group NAME; None when the inventory does not know NAME."""
        if name in self.devices:
            return [self.devices[name]]
        if name in self.groups:
            return [self.devices[n] for n in self.groups[name]]
        return None
