"""SSH connections to devices with paramiko: the user's ~/.ssh/config, keys and agent, and
host keys checked against known_hosts the way OpenSSH's StrictHostKeyChecking=accept-new does
(only on request) or =yes (the default)."""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from edgenn.errors import EdgennError

_KNOWN_HOSTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class SshOptions:
    ssh_config: str | None = None      # default ~/.ssh/config when it exists
    known_hosts: str | None = None     # default: UserKnownHostsFile from the config, else ~/.ssh/known_hosts
    accept_new_host: bool = False      # record the key of a host never seen before instead of refusing it
    timeout: float = 15.0


def fingerprint(key):
    """OpenSSH's SHA256:... fingerprint of a host key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _host_config(host, options):
    import paramiko

    path = Path(options.ssh_config or "~/.ssh/config").expanduser()
    if options.ssh_config and not path.is_file():
        raise EdgennError(f"{path}: no such ssh config file; check --ssh-config")
    if not path.is_file():
        return {}
    return paramiko.SSHConfig.from_path(str(path)).lookup(host)


def connect(host, port=None, user=None, options=SshOptions()):
    """A connected, authenticated paramiko SSHClient; EdgennError with the fix when that fails."""
    import paramiko

    config = _host_config(host, options)
    hostname = config.get("hostname", host)
    port = int(port or config.get("port", 22))
    user = user or config.get("user") or getpass.getuser()
    label = f"{user}@{hostname}:{port}"
    known_hosts = Path(options.known_hosts or (config.get("userknownhostsfile") or "~/.ssh/known_hosts").split()[0])
    known_hosts = known_hosts.expanduser()

    client = paramiko.SSHClient()
    if known_hosts.is_file():
        client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(_NewHostPolicy(options.accept_new_host, known_hosts))
    sock = paramiko.ProxyCommand(config["proxycommand"]) if config.get("proxycommand") else None
    try:
        client.connect(hostname, port, username=user, key_filename=config.get("identityfile"),
                       timeout=options.timeout, banner_timeout=options.timeout,
                       auth_timeout=options.timeout, sock=sock)
    except paramiko.BadHostKeyException as exc:
        client.close()
        name = hostname if port == 22 else f"[{hostname}]:{port}"
        raise EdgennError(
            f"WARNING: the host key of {name} has CHANGED (known_hosts {known_hosts} has "
            f"{fingerprint(exc.expected_key)}, the device now offers {fingerprint(exc.key)}): someone may "
            "be intercepting the connection (a man-in-the-middle attack), or the device was re-installed; "
            f"refused. If you know why it changed, remove the old key with `ssh-keygen -f {known_hosts} "
            f"-R '{name}'` and connect again") from None
    except paramiko.AuthenticationException:
        client.close()
        raise EdgennError(f"{label}: authentication failed; put your public key in the device's "
                          "~/.ssh/authorized_keys (ssh-copy-id), load it into ssh-agent, or set "
                          "IdentityFile in ~/.ssh/config") from None
    except EdgennError:
        client.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        reason = "timed out" if isinstance(exc, socket.timeout) else (getattr(exc, "strerror", None) or exc)
        raise EdgennError(f"{label}: cannot connect ({reason}); check that the device is on, reachable "
                          "and running sshd") from None
    return client, label


class _NewHostPolicy:
    """Refuse a host that is not in known_hosts, or record it when the user accepted new hosts."""

    def __init__(self, accept_new, known_hosts):
        self.accept_new = accept_new
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        if not self.accept_new:
            raise EdgennError(f"{hostname} is not in {self.known_hosts} (its {key.get_name()} key is "
                              f"{fingerprint(key)}); check that fingerprint on the device "
                              "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and rerun with --accept-new-host")
        from paramiko.hostkeys import HostKeyEntry

        # Append rather than rewrite, so lines paramiko does not parse (certificates, markers) survive.
        with _KNOWN_HOSTS_LOCK:
            self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.known_hosts, "a") as handle:
                handle.write(HostKeyEntry([hostname], key).to_line())
            os.chmod(self.known_hosts, 0o600)
        client.get_host_keys().add(hostname, key.get_name(), key)
