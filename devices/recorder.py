"""Annotated video to a file with cv2.VideoWriter: .mp4 as mp4v, .avi as MJPG (the codecs OpenCV's
wheels can write). Opened at the first frame (its size), released by close(), which the runner
calls on every way out, Ctrl-C and SIGTERM included, so the file is finalized and plays."""

from pathlib import Path

import cv2

from edgenn.errors import EdgennError

CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mjpg": "MJPG", ".mkv": "MJPG"}


def check_path(path):
    """Refuse an unknown suffix or a missing folder before the run starts."""
    path = Path(path)
    if path.suffix.lower() not in CODECS:
        raise EdgennError(f"--record {path}: use a .mp4 (mp4v) or .avi (MJPG) file name")
    if not path.parent.exists():
        raise EdgennError(f"--record {path}: folder {path.parent} does not exist")
    return path


class Recorder:
    def __init__(self, path, fps=15.0):
        self.path = check_path(path)
        self.fps = float(fps or 15.0)
        self.writer = None
        self.frames = 0

    def write(self, image):
        if self.writer is None:
            height, width = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*CODECS[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self.writer.isOpened():
                raise EdgennError(f"OpenCV cannot write {self.path}; try an .avi (MJPG) file instead")
        self.writer.write(image)
        self.frames += 1

    def close(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None
