"""Calibration and evaluation data given as arrays, for models whose inputs are not pictures or WAVs
(sensor sequences, feature frames, anything of any rank):

  * an .npz with `x` (N samples of exactly the model's input shape, batch axis first), optionally `y`
    (N class indices) and `label_names`;
  * a folder of .npy files, one sample each; files in subfolders are labelled by the subfolder name.

numpy only. Shapes are checked by the converter against the model, with one line naming both.
"""

import zipfile
from pathlib import Path

import numpy as np

from edgenn.errors import EdgennError


def is_array_source(source):
    """True for an existing .npz or a folder holding .npy files."""
    path = Path(str(source))
    if path.suffix == ".npz":
        return path.is_file()  # a missing one is reported by the pictures' precheck, before TensorFlow starts
    return path.is_dir() and any(path.rglob("*.npy"))


def load_arrays(source, labels=None, limit=None, what="--calibration"):
    """(x [N, ...] as stored, truth int array [N] or None, label names or None), at most `limit` samples
    spread evenly over the source. labels: the model's label list, which folder names index."""
    path = Path(str(source))
    if path.suffix == ".npz":
        x, truth, names = _read_npz(path, what)
    elif path.is_dir():
        x, truth, names = _read_folder(path, labels, what)
    else:
        raise EdgennError(f"{what} {path}: no such .npz or folder of .npy files; check the path")
    if names is not None and labels is not None and truth is not None and names != list(labels):
        truth = _to_label_order(truth, names, labels, path, what)
        names = list(labels)
    if truth is not None and len(truth) != len(x):
        raise EdgennError(f"{what} {path}: {len(x)} samples in 'x' but {len(truth)} labels in 'y'; save one label "
                          "per sample")
    if limit and len(x) > limit:
        keep = np.linspace(0, len(x) - 1, limit).round().astype(int)
        x, truth = x[keep], (None if truth is None else truth[keep])
    if names is None and labels is not None:
        names = list(labels)
    return x, truth, names


def _read_npz(path, what):
    if not path.is_file():
        raise EdgennError(f"{what} {path}: no such file; check the path")
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise EdgennError(f"{what} {path}: cannot read this .npz ({exc}); re-create it with numpy.savez") from None
    if "x" not in data:
        raise EdgennError(f"{what} {path}: no 'x' array (found: {', '.join(data) or 'nothing'}); save the samples "
                          "as numpy.savez(path, x=samples, y=labels)")
    x = data["x"]
    if x.dtype.kind not in "fiub" or x.ndim < 2 or not len(x):
        raise EdgennError(f"{what} {path}: 'x' is {x.dtype} of shape {list(x.shape)}; expected numbers, N samples "
                          "along the first axis")
    truth = _class_indices(data["y"], path, what) if "y" in data else None
    names = [str(n) for n in data["label_names"]] if "label_names" in data else None
    return x, truth, names


def _class_indices(y, path, what):
    """Class indices from `y`: indices, or one-hot / score rows (their argmax)."""
    if y.dtype.kind not in "fiub":
        raise EdgennError(f"{what} {path}: 'y' holds {y.dtype} values; save class indices (0, 1, ...) or one-hot rows")
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    y = y.reshape(-1)
    if not np.all(np.isfinite(y)) or np.any(y < 0) or np.any(y != np.round(y)):
        raise EdgennError(f"{what} {path}: 'y' must hold whole class indices from 0 (found {y[:3].tolist()}...)")
    return y.astype(int)


def _to_label_order(truth, names, labels, path, what):
    """Indices into the data's own label_names, re-indexed into the model's labels (--labels)."""
    if truth.max() >= len(names):
        raise EdgennError(f"{what} {path}: 'y' has class {truth.max()} but label_names only {len(names)} names")
    missing = sorted(set(names[t] for t in set(truth.tolist())) - set(labels))
    if missing:
        raise EdgennError(f"{what} {path}: label_names {missing} are not among the model's labels ({list(labels)}); "
                          "fix --labels or the data")
    return np.array([list(labels).index(names[t]) for t in truth])


def _read_folder(path, labels, what):
    files = sorted(path.rglob("*.npy"))
    if not files:
        raise EdgennError(f"{what} {path}: no .npy files; save one sample per file (np.save), in one subfolder "
                          "per label when labelled")
    folders = [f.parent.relative_to(path).as_posix() for f in files]
    labelled = all(folder != "." for folder in folders)
    names = list(labels) if labels is not None else (sorted(set(folders)) if labelled else None)
    if labelled and sorted(set(folders) - set(names)):
        raise EdgennError(f"{what} {path}: subfolder(s) {sorted(set(folders) - set(names))} are not labels of the "
                          f"model ({names}); rename or remove them")
    samples = []
    for file in files:
        try:
            samples.append(np.load(file, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise EdgennError(f"{what} {file}: cannot read this .npy ({exc}); re-save it with numpy.save") from None
    shapes = {s.shape for s in samples}
    if len(shapes) != 1:
        raise EdgennError(f"{what} {path}: the .npy files have different shapes {sorted(shapes)[:3]}; every sample "
                          "must have the model's input shape")
    truth = np.array([names.index(f) for f in folders]) if labelled else None
    return np.stack(samples), truth, names
