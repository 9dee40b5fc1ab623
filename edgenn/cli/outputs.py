"""Checks of the files a command will write, made before any work starts, so a bad path costs no
time and leaves nothing behind."""

import tempfile
from pathlib import Path

from edgenn.errors import EdgennError


def check_writable(path, option):
    """Refuse PATH (given with OPTION) when its folder is missing or cannot take a new file.

    Creating a file is the only test that holds for root too (os.access says yes to read-only mounts)."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise EdgennError(f"{option} {path}: folder {folder} does not exist; create it or choose another path")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise EdgennError(f"{option} {path}: cannot write in {folder} ({exc.strerror}); "
                          "choose a folder you can write to") from None


def check_event_files(specs):
    """check_writable for the --events that name files ('-' and mqtt:// URLs are checked when opened)."""
    for spec in specs:
        if spec != "-" and "://" not in spec:
            check_writable(spec, "--events")
