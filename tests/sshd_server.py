"""Real OpenSSH servers on 127.0.0.1 for the flash tests, and a TCP proxy that cuts connections.

Each Sshd has its own host key and port; all accept one client key. The device's files live on
this machine, so tests check what a flash did by reading them directly."""

import os
import selectors
import socket
import subprocess
import threading
import time
from pathlib import Path

from conftest import free_port

SSHD = "/usr/sbin/sshd"


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return path


class Sshd:
    def __init__(self, folder, authorized_keys):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(self.folder / "host_key")
        self.port = free_port()
        self.config = self.folder / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {self.folder / 'sshd.pid'}\nAuthorizedKeysFile {authorized_keys}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "UseDNS no\nSubsystem sftp internal-sftp\n")
        self.process = None

    def known_hosts_line(self):
        kind, key = (self.folder / "host_key.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}\n"

    def start(self):
        os.makedirs("/run/sshd", exist_ok=True)
        log = open(self.folder / "sshd.log", "ab")
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"SSH"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd on port {self.port} did not start; see {self.folder / 'sshd.log'}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class CuttingProxy:
    """Forwards 127.0.0.1:port to an upstream port; with `limit` set, each connection is cut after
    that many bytes (both directions counted). `last_total` is the byte count of the last connection."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.limit = None
        self.last_total = 0
        self.live = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.pumps = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            pump = threading.Thread(target=self._pump, args=(client,), daemon=True)
            self.pumps.append(pump)
            pump.start()

    def _pump(self, client):
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        peers = {client: upstream, upstream: client}
        selector = selectors.DefaultSelector()
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        total, limit = 0, self.limit
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    if limit is not None and total + len(data) >= limit:
                        peers[key.fileobj].sendall(data[:limit - total])
                        total = limit
                        return
                    peers[key.fileobj].sendall(data)
                    total += len(data)
                    self.live = total
        except OSError:
            return
        finally:
            self.last_total = total
            for sock in peers:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def wait(self):
        """Let every connection so far finish (so last_total is final)."""
        for pump in list(self.pumps):
            pump.join(timeout=10)

    def close(self):
        self.server.close()
