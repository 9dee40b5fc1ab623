"""Annotated video to a file with cv2.VideoWriter, in the codecs OpenCV's wheels can write, chosen by
the file's extension (FORMATS). Opened at the first frame (its size), released by close(), which the
runner calls on every way out, Ctrl-C and SIGTERM included, so the file is finalized and plays."""

from pathlib import Path

from edgenn.errors import EdgennError

# extension -> (fourcc, what the file holds); OpenCV's wheels have no H.264 encoder.
FORMATS = {
    ".mp4": ("mp4v", "MPEG-4 Part 2 (mp4v) in MP4"),
    ".m4v": ("mp4v", "MPEG-4 Part 2 (mp4v) in MP4"),
    ".mov": ("mp4v", "MPEG-4 Part 2 (mp4v) in QuickTime"),
    ".avi": ("MJPG", "Motion JPEG in AVI"),
    ".mkv": ("MJPG", "Motion JPEG in Matroska"),
    ".mjpg": ("MJPG", "a raw Motion JPEG stream"),
}


def formats_help():
    """What each extension gives, for --help and error messages."""
    return ", ".join(f"{suffix} = {what}" for suffix, (_, what) in FORMATS.items())


def describe(path):
    """What a recording to PATH holds, e.g. 'Motion JPEG in Matroska'."""
    return FORMATS[Path(path).suffix.lower()][1]


def check_path(path):
    """Refuse an unknown extension or a missing folder before the run starts."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise EdgennError(f"--record {path}: unknown extension; use one of {formats_help()}")
    if not path.parent.is_dir():
        raise EdgennError(f"--record {path}: folder {path.parent} does not exist; create it or choose another path")
    return path


class Recorder:
    def __init__(self, path, fps=15.0):
        self.path = check_path(path)
        self.fps = float(fps or 15.0)
        self.writer = None
        self.frames = 0

    def write(self, image):
        if self.writer is None:
            self.writer = self._open(width=image.shape[1], height=image.shape[0])
        self.writer.write(image)
        self.frames += 1

    def _open(self, width, height):
        import cv2  # here, so the extension table above loads without OpenCV (the CLI's --help)

        fourcc = cv2.VideoWriter_fourcc(*FORMATS[self.path.suffix.lower()][0])
        writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
        if not writer.isOpened():
            raise EdgennError(f"OpenCV cannot write {self.path}; try an .avi (Motion JPEG) file instead")
        return writer

    def close(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None
