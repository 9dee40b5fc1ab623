"""The device file system as a local folder: an SD card or a mounted image (see layout.py)."""

import hashlib
import os
import shutil
from pathlib import Path


class LocalFS:
    """File operations for layout.Store on this machine, fsynced so a pulled SD card keeps them."""

    def resolve(self, path):
        return str(Path(path).expanduser().absolute())

    def listdir(self, path):
        try:
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def readlink(self, path):
        try:
            return os.readlink(path)
        except (FileNotFoundError, OSError):
            return None

    def read_bytes(self, path):
        try:
            return Path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def makedirs(self, path):
        os.makedirs(path, exist_ok=True)

    def mkdir(self, path):
        os.mkdir(path)

    def write(self, path, data, progress=None):
        with open(path, "wb") as handle:
            step = 1 << 20
            for start in range(0, len(data), step):
                handle.write(data[start:start + step])
                if progress:
                    progress(min(start + step, len(data)), len(data))
            handle.flush()
            os.fsync(handle.fileno())

    def sha256(self, path):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def checksum_job(self):
        return self.sha256

    def rename(self, source, destination):
        os.replace(source, destination)
        fd = os.open(os.path.dirname(destination), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def symlink(self, target, link):
        os.symlink(target, link)

    def remove_tree(self, path):
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
