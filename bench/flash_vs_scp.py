"""Flash a 5 MB bundle to a loopback sshd vs a bare `scp` of the same file, in the same run.

Starts its own sshd on 127.0.0.1 (like the tests), then alternates, run by run:
  scp        `scp` of the bundle (SFTP mode), a new process each time
  flash      edgenn.flash in-process: connect, upload, sha256 on the device, rename, switch, prune
  flash CLI  `edgenn flash` as a new process (adds Python start-up and imports)
  ssh true   `ssh HOST true`: what one command on the device costs (its login shell's start-up)
and prints the medians and the flash/scp ratios.

    .venv/bin/python bench/flash_vs_scp.py [--runs 7] [--size-mb 5]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from flash_helpers import make_model  # noqa: E402
from sshd_server import Sshd, keygen  # noqa: E402

from edgenn.flash import actions, artifact  # noqa: E402
from edgenn.flash.ssh import SshOptions  # noqa: E402
from edgenn.flash.targets import Target  # noqa: E402


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size-mb", type=float, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        key = keygen(root / "client_key")
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
        server = Sshd(root / "sshd", root / "authorized_keys").start()
        try:
            (root / "known_hosts").write_text(server.known_hosts_line())
            config = root / "ssh_config"
            config.write_text(f"Host *\n  User root\n  IdentityFile {key}\n  UserKnownHostsFile {root / 'known_hosts'}\n")
            options = SshOptions(ssh_config=str(config))
            (root / "scp").mkdir()
            size = int(args.size_mb * 1024 * 1024)
            times = {"scp": [], "flash": [], "flash CLI": [], "ssh true": []}
            scp = ["scp", "-q", "-F", str(config), "-P", str(server.port)]
            for run in range(args.runs + 1):  # run 0 warms caches and is not counted
                model = make_model(root, f"r{run}", size=size)
                cli_model = make_model(root, f"c{run}", size=size)
                target = Target("bench", "ssh", "127.0.0.1", port=server.port, remote_dir=str(root / "device"))
                measured = {
                    "scp": timed(lambda: subprocess.run(scp + [str(model), f"127.0.0.1:{root / 'scp' / 'x'}"],
                                                        check=True)),
                    "flash": timed(lambda: _flash(model, target, options)),
                    "flash CLI": timed(lambda: subprocess.run(
                        [str(Path(sys.executable).with_name("edgenn")), "flash", str(cli_model), f"127.0.0.1:{server.port}",
                         "--ssh-config", str(config), "--remote-dir", str(root / "cli-device"), "-q", "--keep", "2"],
                        check=True, capture_output=True)),
                    "ssh true": timed(lambda: subprocess.run(
                        ["ssh", "-F", str(config), "-p", str(server.port), "127.0.0.1", "true"], check=True)),
                }
                if run:
                    for name, seconds in measured.items():
                        times[name].append(seconds)
        finally:
            server.stop()

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.size_mb:g} MB bundle, {args.runs} runs, medians:")
    for name, value in medians.items():
        print(f"  {name:10s} {value * 1000:7.0f} ms   (min {min(times[name]) * 1000:.0f}, max {max(times[name]) * 1000:.0f})")
    ratio = medians["flash"] / medians["scp"]
    print(f"flash / scp = {ratio:.2f}x   flash CLI / scp = {medians['flash CLI'] / medians['scp']:.2f}x   "
          f"(target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})")
    return 0 if ratio <= 1.5 else 1


def _flash(model, target, options):
    result = actions.flash_one(artifact.load(model), target, options, keep=2, quiet=True)
    if not result.ok:
        raise SystemExit(f"flash failed: {result.message}")


if __name__ == "__main__":
    sys.exit(main())
