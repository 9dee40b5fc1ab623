"""The device file system over SSH: SFTP for files, folders and links, and one POSIX command
(sha256sum) to check an upload where it landed, so edgenn need not be installed on the device.

The checksum command is a fixed argument list (quoted with shlex) that reads the file's path from
its stdin, so no name or path is ever parsed by the device's shell."""

import io
import posixpath
import shlex
import stat

from edgenn.errors import EdgennError

# xargs -0 hands the NUL-terminated path to a constant script as $1 (-r: nothing when the upload
# failed and no path came). Flush the file to the device's storage (only that file: a global sync can take seconds), then hash it.
CHECKSUM_COMMAND = ["xargs", "-0", "-r", "sh", "-c", 'sync -- "$1" 2>/dev/null || sync; exec sha256sum -- "$1"', "sh"]


class RemoteFS:
    """File operations for layout.Store on a device reached by a connected paramiko SSHClient."""

    def __init__(self, client, label, timeout=60):
        self.client = client
        self.label = label
        self.timeout = timeout
        self.sftp = client.open_sftp()
        self.sftp.get_channel().settimeout(timeout)
        self.home = self.sftp.normalize(".")

    def resolve(self, path):
        if path == "~" or path.startswith("~/"):
            path = path[2:]
        return posixpath.normpath(posixpath.join(self.home, path))

    def listdir(self, path):
        try:
            return self.sftp.listdir(path)
        except FileNotFoundError:
            return []

    def readlink(self, path):
        try:
            return self.sftp.readlink(path)
        except OSError:
            return None

    def read_bytes(self, path):
        try:
            with self.sftp.open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def makedirs(self, path):
        missing = []
        while path not in ("/", ""):
            try:
                self.sftp.stat(path)
                break
            except FileNotFoundError:
                missing.append(path)
                path = posixpath.dirname(path)
        for folder in reversed(missing):
            self.sftp.mkdir(folder)

    def mkdir(self, path):
        self.sftp.mkdir(path)

    def write(self, path, data, progress=None):
        self.sftp.putfo(io.BytesIO(data), path, file_size=len(data), callback=progress, confirm=True)

    def checksum_job(self):
        """Start the checksum command now, so the device's shell starts up while the file uploads;
        returns sha256(path) to call once the file is there."""
        stdin, stdout, stderr = self.client.exec_command(shlex.join(CHECKSUM_COMMAND), timeout=self.timeout)

        def sha256(path):
            stdin.write(path.encode() + b"\0")
            stdin.close()  # end of input: xargs runs the script (dropping stdin early would end it unrun)
            out, err = stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
            status = stdout.channel.recv_exit_status()
            if status == -1:  # no exit status: the connection closed under the command
                raise EOFError("connection closed while checking the upload")
            if status != 0 or not out.strip():
                raise EdgennError(f"{self.label}: cannot compute sha256 on the device ({err.strip() or status}); "
                                  "it needs the POSIX tools xargs, sh and sha256sum (coreutils or BusyBox)")
            return out.split()[0].lower()

        return sha256

    def rename(self, source, destination):
        self.sftp.posix_rename(source, destination)

    def symlink(self, target, link):
        self.sftp.symlink(target, link)

    def remove_tree(self, path):
        try:
            mode = self.sftp.lstat(path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(mode):
            self.sftp.remove(path)
            return
        for entry in self.sftp.listdir(path):
            self.remove_tree(posixpath.join(path, entry))
        self.sftp.rmdir(path)
