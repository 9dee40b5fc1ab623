"""Calibration and evaluation data for image models, preprocessed exactly as the device runners do.

A source is one of:
  * a folder of images, searched recursively; the name of each image's parent folder (below the
    root) is its label, so `cal/circle/001.png` is a `circle`;
  * an .npz file with `images` (N, H, W[, C] uint8 pictures of any one size) and optionally
    `labels` (N,) class indices, `label_names`, or for detectors `boxes` (N, K, 4) pixel boxes
    [x0, y0, x1, y1] with `box_labels` (N, K) class indices, -1 marking padding; or, as for every
    model kind, `x` and `y` (converters/array_data.py);
  * a folder of .npy files, one picture (or float model input) each, subfolder = label;
  * an importable generator, `package.module:function` or `path/to/file.py:function`, called with
    no arguments; it yields pictures, or (picture, truth) pairs where truth is a class index
    (classifiers) or a list of (class index, [x0, y0, x1, y1]) (detectors).

Every picture goes through edgenn.image.ImageInput — the code the camera runner uses — so
calibration and evaluation see what the device will see. numpy + OpenCV only (no TensorFlow).
"""

import importlib
import importlib.util
import itertools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgenn.errors import EdgennError
from edgenn.image import ImageInput
from edgenn.runtime import TensorInfo

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}


@dataclass
class Samples:
    """Preprocessed model inputs with their ground truth (None where unknown)."""
    inputs: np.ndarray                      # (N, H, W, C) float32, ready for the float model
    truth: list = field(default_factory=list)       # class index, [(class, box)...] or None
    placements: list = field(default_factory=list)  # edgenn.image.Placement of each picture
    label_names: list = None                # class names the source itself carries

    def __len__(self):
        return len(self.inputs)

    def take(self, index):
        index = list(index)
        return Samples(self.inputs[index], [self.truth[i] for i in index],
                       [self.placements[i] for i in index], self.label_names)

    @property
    def has_truth(self):
        return bool(self.truth) and all(t is not None for t in self.truth)


def image_input(shape, normalization, resize="stretch", color="rgb"):
    """The ImageInput for a model input of shape [1, H, W, C] (or [1, H, W])."""
    tensor = float_tensor(shape)
    spec = {"normalization": normalization, "resize": resize, "color": color}
    return ImageInput.from_tensor(tensor, spec)


def float_tensor(shape):
    return TensorInfo("input", 0, tuple(shape), np.dtype(np.float32), 0.0, 0)


def load(source, shape, normalization, limit, resize="stretch", color="rgb", what="--calibration"):
    """Samples from a folder, .npz or generator, at most `limit` of them."""
    pictures, truth, names = _read(source, limit, what)
    if not pictures:
        raise EdgennError(f"{what} {source}: no samples found; give a folder with images, an .npz with "
                          "an 'images' array, or a generator that yields pictures")
    prep = image_input(shape, normalization, resize, color)
    tensor = float_tensor(shape)
    inputs, placements = [], []
    for i, picture in enumerate(pictures):
        picture = np.asarray(picture)
        _check_picture(picture, prep, source, i, what)
        if picture.dtype.kind == "f":  # already a model input: must match exactly
            inputs.append(picture.reshape(shape[1:]).astype(np.float32))
            placements.append(None)
            continue
        array, placement = prep.prepare(picture, tensor)
        inputs.append(array[0])
        placements.append(placement)
    return Samples(np.stack(inputs).astype(np.float32), truth, placements, names)


def generated(shape, normalization, n, resize="stretch", color="rgb", seed=0):
    """n pictures of random pixels at the model's input size, preprocessed like any other (no truth)."""
    rng = np.random.default_rng(seed)
    height, width = shape[1], shape[2]
    channels = shape[3] if len(shape) == 4 else None
    size = (height, width) + ((3,) if channels == 3 else ())
    pictures = [rng.integers(0, 256, size, dtype=np.uint8) for _ in range(n)]
    prep, tensor = image_input(shape, normalization, resize, color), float_tensor(shape)
    prepared = [prep.prepare(picture, tensor) for picture in pictures]
    return Samples(np.stack([array[0] for array, _ in prepared]).astype(np.float32), [None] * n,
                   [placement for _, placement in prepared])


def precheck(source, what="--calibration"):
    """Fail fast, before any model loads, on a missing path or a folder without images."""
    path = Path(str(source))
    if path.is_dir():
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*")):
            raise EdgennError(f"{what} {path}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                              "put calibration pictures in it, one subfolder per label")
    elif not path.exists() and (path.suffix == ".npz" or ":" not in str(source)):
        raise EdgennError(f"{what} {path}: no such folder or file (nor a module:function generator); check the path")


def _check_picture(picture, prep, source, index, what):
    expected = (prep.height, prep.width) + ((prep.channels,) if prep.layout_has_channels else ())
    if picture.dtype.kind == "f":
        if picture.shape != expected:
            raise EdgennError(f"{what} {source}: sample {index} is a float array of shape {list(picture.shape)} "
                              f"but the model input is {list(expected)}; give uint8 pictures (any size) or "
                              "float arrays of exactly the input shape")
        return
    if picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] not in (1, 3)) \
            or min(picture.shape[:2]) < 1:
        raise EdgennError(f"{what} {source}: sample {index} has shape {list(picture.shape)}, which is not a "
                          "picture (H x W, H x W x 1 or H x W x 3)")


def _read(source, limit, what):
    """(pictures, truth, label_names) of a source."""
    text = str(source)
    path = Path(text)
    if path.is_dir() and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*")) \
            and any(path.rglob("*.npy")):
        return _read_arrays(path, limit, what)
    if path.is_dir():
        return _read_folder(path, limit, what)
    if path.suffix == ".npz":
        if not path.is_file():
            raise EdgennError(f"{what} {path}: no such file; check the path")
        return _read_npz(path, limit, what)
    if ":" in text and not path.exists():
        return _read_generator(text, limit, what)
    if path.exists():
        raise EdgennError(f"{what} {path}: not a folder of images or an .npz file")
    raise EdgennError(f"{what} {path}: no such folder or file (nor a module:function generator); "
                      "check the path")


def _read_folder(root, limit, what):
    import cv2  # host and device both have OpenCV; loaded only when a folder is read

    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise EdgennError(f"{what} {root}: the folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                          "put calibration pictures in it, one subfolder per label")
    files = _spread(files, limit)
    folders = [p.parent.relative_to(root).as_posix() for p in files]
    labelled = all(folder != "." for folder in folders)
    names = sorted(set(folders)) if labelled else None
    pictures = []
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise EdgennError(f"{what} {file}: cannot read this image; remove or replace it")
        pictures.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    truth = [names.index(f) for f in folders] if labelled else [None] * len(files)
    return pictures, truth, names


def _spread(items, limit):
    """At most `limit` items spread evenly over the sorted list, so every label folder is sampled."""
    if limit is None or len(items) <= limit:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _read_npz(path, limit, what):
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise EdgennError(f"{what} {path}: cannot read this .npz ({exc}); re-create it with numpy.savez") from None
    if "images" not in data and "x" in data:
        return _read_arrays(path, limit, what)
    if "images" not in data:
        raise EdgennError(f"{what} {path}: no 'images' (or 'x') array (found: {', '.join(data) or 'nothing'}); "
                          "save the pictures as numpy.savez(path, images=...)")
    images = data["images"]
    if images.ndim not in (3, 4):
        raise EdgennError(f"{what} {path}: 'images' has shape {list(images.shape)}; expected N x H x W x C")
    n = len(images) if limit is None else min(limit, len(images))
    names = [str(x) for x in data["label_names"]] if "label_names" in data else None
    if "boxes" in data and "box_labels" in data:
        truth = [[(int(c), [float(v) for v in box]) for c, box in zip(data["box_labels"][i], data["boxes"][i])
                  if c >= 0] for i in range(n)]
    elif "labels" in data:
        truth = [int(x) for x in data["labels"][:n]]
    else:
        truth = [None] * n
    return list(images[:n]), truth, names


def _read_arrays(path, limit, what):
    """An .npz with x/y or a folder of .npy files; uint8 arrays are pictures, float arrays model inputs."""
    from edgenn.converters.array_data import load_arrays

    x, truth, names = load_arrays(path, None, limit, what)
    return list(x), ([None] * len(x) if truth is None else [int(t) for t in truth]), names


def _read_generator(spec, limit, what):
    target, _, name = spec.rpartition(":")
    try:
        if target.endswith(".py"):
            module_spec = importlib.util.spec_from_file_location(Path(target).stem, target)
            if module_spec is None or not Path(target).is_file():
                raise ImportError(f"no such file {target}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        function = getattr(module, name)
    except (ImportError, AttributeError, SyntaxError) as exc:
        raise EdgennError(f"{what} {spec}: cannot import the generator ({exc}); give module:function "
                          "or path/to/file.py:function") from None
    pictures, truth = [], []
    try:
        for item in itertools.islice(function(), limit):
            if isinstance(item, tuple) and len(item) == 2:
                pictures.append(item[0])
                truth.append(item[1])
            else:
                pictures.append(item)
                truth.append(None)
    except EdgennError:
        raise
    except Exception as exc:
        raise EdgennError(f"{what} {spec}: the generator failed ({type(exc).__name__}: {exc})") from None
    return pictures, truth, None
