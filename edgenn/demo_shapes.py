"""Synthetic coloured shapes on textured, noisy backgrounds: the demo CNNs' data.

numpy + OpenCV only (no TensorFlow), because devices use it too: to write the demo video and
calibration images. Everything is deterministic given a `numpy.random.Generator` or a seed.

Images are uint8 RGB, shape (H, W, 3). Boxes are [x0, y0, x1, y1] in pixels (float), the tight
axis-aligned box of the drawn polygon.
"""

import json
from pathlib import Path

import cv2
import numpy as np

LABELS = ("circle", "square", "triangle", "star")


def _unit_polygon(label_id):
    """Vertices of a shape with circumradius 1, centred on the origin."""
    if LABELS[label_id] == "circle":
        n, radii = 48, [1.0]
    elif LABELS[label_id] == "square":
        n, radii = 4, [1.0]
    elif LABELS[label_id] == "triangle":
        n, radii = 3, [1.0]
    else:  # five-pointed star: outer and inner vertices alternate
        n, radii = 10, [1.0, 0.45]
    angles = np.arange(n) * 2 * np.pi / n - np.pi / 2
    r = np.resize(radii, n)
    return np.stack([r * np.cos(angles), r * np.sin(angles)], axis=1)


_POLYGONS = [_unit_polygon(i) for i in range(len(LABELS))]


def shape_polygon(label_id, center, radius, angle, aspect=1.0):
    """The pixel vertices of a shape: circumradius `radius`, stretched by sqrt(aspect) along x and
    shrunk by it along y (before rotation by `angle` radians), centred on `center` (x, y)."""
    pts = _POLYGONS[label_id] * [radius * np.sqrt(aspect), radius / np.sqrt(aspect)]
    c, s = np.cos(angle), np.sin(angle)
    return pts @ np.array([[c, s], [-s, c]]) + center


def polygon_box(pts):
    """The tight axis-aligned box [x0, y0, x1, y1] of a polygon."""
    return [float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())]


def textured_background(rng, height, width):
    """A random background: smooth colour blobs around a base colour, stripes, a few clutter lines."""
    cells = rng.integers(2, 7, size=2)
    base = rng.uniform(40, 215, size=3)
    blobs = np.clip(base + rng.uniform(-50, 50, size=(cells[0], cells[1], 3)), 0, 255).astype(np.float32)
    img = cv2.resize(blobs, (width, height), interpolation=cv2.INTER_CUBIC)
    # stripes of random period and orientation
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    theta, period = rng.uniform(0, np.pi), rng.uniform(4, 24) * max(height, width) / 96
    wave = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / period)
    img += wave[..., None] * rng.uniform(0, 20, size=3).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    scale = max(height, width) / 96
    for _ in range(rng.integers(0, 3)):
        p0, p1 = rng.uniform(0, [width, height], size=(2, 2)).astype(int)
        cv2.line(img, tuple(map(int, p0)), tuple(map(int, p1)), _colour(rng, 0.2, 0.8),
                 max(1, int(scale)), cv2.LINE_AA)
    return img


def _colour(rng, vmin=0.45, vmax=1.0):
    """A random RGB colour (tuple of ints), from HSV so saturation and value stay controlled."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0.3, 1.0) * 255, rng.uniform(vmin, vmax) * 255]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0])


def _contrasting_colour(rng, img, pts):
    """A colour that stands out from the background under the shape (mean distance >= 80)."""
    x0, y0, x1, y1 = (int(v) for v in polygon_box(pts))
    patch = img[max(y0, 0):max(y1, 1), max(x0, 0):max(x1, 1)].reshape(-1, 3)
    mean = patch.mean(axis=0) if len(patch) else np.full(3, 128.0)
    best, best_d = None, -1.0
    for _ in range(12):
        colour = _colour(rng)
        d = float(np.linalg.norm(np.array(colour) - mean))
        if d >= 80:
            return colour
        if d > best_d:
            best, best_d = colour, d
    return best if best_d >= 40 else tuple(int(v) for v in (255 - mean))


def draw_shape(rng, img, label_id, center, radius, angle, aspect=1.0, colour=None):
    """Draw a filled, anti-aliased shape (sometimes outlined) on `img`; returns its box.
    Without `colour`, one that contrasts with the background is drawn from `rng`."""
    pts = shape_polygon(label_id, np.asarray(center, float), radius, angle, aspect)
    if colour is None:
        colour = _contrasting_colour(rng, img, pts)
    fixed = np.round(pts * 16).astype(np.int32)  # 4 fractional bits for sub-pixel edges
    cv2.fillPoly(img, [fixed], colour, cv2.LINE_AA, shift=4)
    if rng.random() < 0.3:
        edge = tuple(int(v * 0.5) for v in colour)
        cv2.polylines(img, [fixed], True, edge, 1, cv2.LINE_AA, shift=4)
    return polygon_box(pts)


def _illumination(height, width, gain, gx, gy):
    """A gain field: `gain` at the centre, changing linearly by gx (gy) across the width (height)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return gain * (1 + gx * (xx / width - 0.5) + gy * (yy / height - 0.5))


def apply_lighting(rng, img):
    """Random gain, offset and illumination gradient, then sensor noise and sometimes blur."""
    field = _illumination(*img.shape[:2], rng.uniform(0.6, 1.25), *rng.uniform(-0.4, 0.4, size=2))
    out = img.astype(np.float32) * field[..., None] + rng.uniform(-25, 25)
    out += rng.normal(0, rng.uniform(2, 14), size=out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), 0)
    return out


def _random_pose(rng, radius_range):
    """Radius, angle and aspect; the aspect range also covers a 4:3 frame stretched to a square."""
    return rng.uniform(*radius_range), rng.uniform(0, 2 * np.pi), np.exp(rng.uniform(-0.4, 0.4))


def classification_sample(rng, size=64):
    """One centred shape of random class on a random background: (uint8 RGB image, class index).
    The shape lies wholly inside the image, so no corner that tells the classes apart is cut off."""
    label_id = int(rng.integers(len(LABELS)))
    img = textured_background(rng, size, size)
    radius, angle, aspect = _random_pose(rng, (0.22 * size, 0.4 * size))
    center = size / 2 + rng.uniform(-0.12, 0.12, size=2) * size
    x0, y0, x1, y1 = polygon_box(shape_polygon(label_id, center, radius, angle, aspect))
    center -= [min(0, x0 - 1) + max(0, x1 - size + 2), min(0, y0 - 1) + max(0, y1 - size + 2)]
    draw_shape(rng, img, label_id, center, radius, angle, aspect)
    return apply_lighting(rng, img), label_id


def _box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _place(rng, label_id, width, height, radius_range, boxes, margin):
    """A pose whose box lies inside the image and clear of `boxes` (by `margin` pixels), or None."""
    for _ in range(30):
        radius, angle, aspect = _random_pose(rng, radius_range)
        center = rng.uniform([0, 0], [width, height])
        box = polygon_box(shape_polygon(label_id, center, radius, angle, aspect))
        if box[0] < 0 or box[1] < 0 or box[2] > width - 1 or box[3] > height - 1:
            continue
        grown = [box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin]
        if all(_box_iou(grown, b) == 0 for b in boxes):
            return center, radius, angle, aspect
    return None


def detection_sample(rng, size=96, max_objects=4):
    """1..max_objects non-overlapping shapes: (uint8 RGB image, [(class, [x0, y0, x1, y1]), ...])."""
    img = textured_background(rng, size, size)
    objects = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        label_id = int(rng.integers(len(LABELS)))
        pose = _place(rng, label_id, size, size, (0.08 * size, 0.26 * size),
                      [b for _, b in objects], margin=2)
        if pose is not None:
            objects.append((label_id, draw_shape(rng, img, label_id, *pose)))
    return apply_lighting(rng, img), objects


def write_image_folder(directory, n, seed=0, size=64):
    """Write n classification samples as PNG files into one subfolder per label."""
    rng = np.random.default_rng(seed)
    root = Path(directory)
    for label in LABELS:
        (root / label).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, label_id = classification_sample(rng, size)
        cv2.imwrite(str(root / LABELS[label_id] / f"{i:05d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


def write_demo_video(path, seconds=10.0, fps=15, seed=0, size=(320, 240), n_objects=3):
    """Write an mp4v .mp4 of shapes moving and turning under slowly changing light over a
    textured scene, and beside it PATH.json: the ground truth of every frame (labels, pixel boxes).

    Each shape bounces inside its own vertical strip, so shapes never overlap."""
    rng = np.random.default_rng(seed)
    width, height = size
    path = Path(path)
    background = textured_background(rng, height, width)
    strip = width / n_objects
    shapes = []
    for i in range(n_objects):
        s = {"label_id": int(rng.integers(len(LABELS))), "radius": rng.uniform(0.1, 0.16) * height,
             "angle": rng.uniform(0, 2 * np.pi), "spin": rng.uniform(-2, 2) / fps,
             "aspect": np.exp(rng.uniform(-0.1, 0.1)),
             "vel": rng.uniform(0.3, 1, size=2) * rng.choice([-1, 1], size=2) * [strip, height] * 0.4 / fps}
        margin = s["radius"] * 1.2
        s["lo"] = np.array([strip * i + margin, margin])
        s["hi"] = np.maximum(s["lo"], [strip * (i + 1) - margin, height - margin])
        s["pos"] = rng.uniform(s["lo"], s["hi"])
        pts = shape_polygon(s["label_id"], s["pos"], s["radius"], s["angle"], s["aspect"])
        s["colour"] = _contrasting_colour(rng, background, pts)
        shapes.append(s)
    gx, gy = rng.uniform(-0.3, 0.3, size=2)
    noise = rng.uniform(3, 8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path} with the mp4v codec")
    frames = []
    try:
        for f in range(int(round(seconds * fps))):
            img = background.copy()
            objects = []
            for s in shapes:
                s["pos"] = s["pos"] + s["vel"]
                s["vel"] = np.where((s["pos"] < s["lo"]) | (s["pos"] > s["hi"]), -s["vel"], s["vel"])
                s["pos"] = np.clip(s["pos"], s["lo"], s["hi"])
                s["angle"] += s["spin"]
                box = draw_shape(rng, img, s["label_id"], s["pos"], s["radius"], s["angle"],
                                 s["aspect"], colour=s["colour"])
                objects.append({"label": LABELS[s["label_id"]], "class": s["label_id"], "box": box})
            light = _illumination(height, width, 0.95 + 0.25 * np.sin(2 * np.pi * f / (fps * 7)), gx, gy)
            frame = img * light[..., None] + rng.normal(0, noise, size=img.shape)
            frame = np.clip(frame, 0, 255).astype(np.uint8)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            frames.append({"frame": f, "objects": objects})
    finally:
        writer.release()
    truth = {"labels": list(LABELS), "size": [width, height], "fps": fps, "seed": seed, "frames": frames}
    path.with_suffix(".json").write_text(json.dumps(truth))
    return path


def write_video_frames(directory, seconds=8.0, fps=8, seed=101):
    """Calibration pictures for the demo detector: the frames of a demo video (its own seed) as
    PNGs in DIRECTORY, so calibration sees what the camera runner sees. Returns the frame count."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    video = write_demo_video(directory / "frames.mp4", seconds=seconds, fps=fps, seed=seed)
    capture = cv2.VideoCapture(str(video))
    count = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        cv2.imwrite(str(directory / f"{count:04d}.png"), image)
        count += 1
    capture.release()
    for made in (video, video.with_suffix(".json")):
        made.unlink()
    return count
