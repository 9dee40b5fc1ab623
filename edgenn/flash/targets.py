"""Where a flash goes: `user@host[:port]`, an inventory device or group, or a local folder."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from edgenn.errors import EdgennError
from edgenn.flash.inventory import Inventory

SSH_TARGET = re.compile(r"^(?:(?P<user>[^@/\s]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class Target:
    label: str                  # as shown in results: the device name or what the user typed
    kind: str                   # "ssh" or "local"
    host: str | None = None
    user: str | None = None
    port: int | None = None
    path: str | None = None     # local folder: the models base directory itself
    profile: str | None = None
    remote_dir: str | None = None


def looks_local(text):
    return text.startswith(("/", "./", "../", "~/")) or text in (".", "..") or os.path.isdir(text)


def parse(text):
    """A Target from `user@host[:port]`, `host`, `[ipv6]:port` or a local path."""
    if looks_local(text):
        return Target(label=text, kind="local", path=os.path.expanduser(text))
    match = SSH_TARGET.match(text)
    if not match:
        raise EdgennError(f"'{text}' is not a target; give user@host[:port], an inventory device or group, "
                          "or a local folder (./dir or /path)")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise EdgennError(f"'{text}': port {port} is out of range 1-65535")
    return Target(label=text, kind="ssh", host=match["host"].strip("[]"), user=match["user"], port=port)


def resolve(texts, inventory_path=None, profile=None, remote_dir=None):
    """Targets for the user's TARGET arguments, expanding inventory names and groups, without duplicates.
    PROFILE and REMOTE_DIR (command-line options) override the inventory's."""
    inventory = Inventory.load(inventory_path) if inventory_path else None
    targets = []
    for text in texts:
        devices = inventory.lookup(text) if inventory and not looks_local(text) else None
        if devices is None:
            found = [parse(text)]
        else:
            found = [Target(label=d.name, kind="ssh", host=d.host, user=d.user, port=d.port,
                            profile=d.profile, remote_dir=d.remote_dir) for d in devices]
        for target in found:
            target = Target(**{**target.__dict__, "profile": profile or target.profile,
                               "remote_dir": remote_dir or target.remote_dir})
            if target not in targets:
                targets.append(target)
    return targets
