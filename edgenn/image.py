"""Image preprocessing shared by every vision path (camera runner, converter calibration, evaluation).

Resizing reproduces TFLite's RESIZE_BILINEAR with half-pixel centres and rounds to whole pixel levels,
as TFLite's own uint8 kernel and the Task Library's resampler do: the published expected results hold
with it (Pillow's anti-aliased resize loses the Coral mobilenet_v1 0.25 cat check). It works on the uint8
frame: a float resize first writes a float copy of the whole frame, twice the time of the resize itself
on a 1200x600 frame (0.97 vs 0.48 ms between invokes), the difference between keeping up with a
hand-written loop and not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgenn.errors import EdgennError

RESIZE_POLICIES = ("stretch", "letterbox", "crop")


def _axis_weights(in_size, out_size):
    """Source indices and weights along one axis, as TFLite's ComputeInterpolationValues."""
    scale = in_size / out_size
    position = (np.arange(out_size, dtype=np.float32) + 0.5) * np.float32(scale) - 0.5
    lower = np.maximum(np.floor(position), 0).astype(np.int64)
    upper = np.minimum(np.ceil(position), in_size - 1).astype(np.int64)
    weight = (position - lower).astype(np.float32)
    return lower, upper, weight


def _opencv():
    """OpenCV when installed (every device install has it), else None."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def resize_pixels(image, height, width):
    """Resize a uint8 HxW or HxWxC picture to (height, width): uint8, TFLite half-pixel bilinear rounded.

    OpenCV's INTER_LINEAR_EXACT computes it (same half-pixel mapping and clamping, no anti-aliasing) in
    fixed point fine enough to be unbiased. Its INTER_LINEAR, twice as fast, is a tenth of a level low on
    average at most ratios but bit-identical to it when the picture is a whole multiple of the size (the
    weights are then 0 or 1/2): used there. Without OpenCV numpy does it in float. Tests hold every path
    to TensorFlow's ResizeBilinear: within one level, no bias."""
    image = np.asarray(image, dtype=np.uint8)
    if image.shape[:2] == (height, width):
        return image.copy()  # never a view of the caller's frame, which it may refill while the model runs
    cv2 = _opencv()
    if cv2 is not None and (image.ndim == 2 or image.shape[2] <= 4):
        whole_multiple = image.shape[0] % height == 0 and image.shape[1] % width == 0
        interpolation = cv2.INTER_LINEAR if whole_multiple else cv2.INTER_LINEAR_EXACT
        resized = cv2.resize(image, (width, height), interpolation=interpolation)
        return resized if resized.ndim == image.ndim else resized[:, :, None]
    return np.rint(_resize_bilinear_numpy(image.astype(np.float32), height, width)).astype(np.uint8)


def swap_red_blue(image):
    """HxWx3 RGB <-> BGR, as a new contiguous array (ufuncs on a reversed view are ~10x slower)."""
    cv2 = _opencv()
    if cv2 is not None:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[:, :, ::-1])


def _luma(image, order):
    """uint8 grey of an HxWx3 picture in `order` (ITU-R BT.601 weights, as OpenCV's)."""
    cv2 = _opencv()
    if cv2 is not None:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY if order == "rgb" else cv2.COLOR_BGR2GRAY)
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.rint(image.astype(np.float32) @ (luma if order == "rgb" else luma[::-1])).astype(np.uint8)


def _resize_bilinear_numpy(src, height, width):
    y0, y1, wy = _axis_weights(src.shape[0], height)
    x0, x1, wx = _axis_weights(src.shape[1], width)
    extra = (None,) * (src.ndim - 2)
    rows = src[y0] * (1 - wy)[(slice(None), None, *extra)] + src[y1] * wy[(slice(None), None, *extra)]
    return rows[:, x0] * (1 - wx)[(None, slice(None), *extra)] + rows[:, x1] * wx[(None, slice(None), *extra)]


@dataclass(frozen=True)
class Placement:
    """Where the model's input window sits in the original image, to map boxes back to pixels."""
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def to_image(self, box_xyxy_model):
        """Model-input pixel box -> original-image pixel box."""
        x0, y0, x1, y1 = box_xyxy_model
        return [(x0 - self.offset_x) / self.scale_x, (y0 - self.offset_y) / self.scale_y,
                (x1 - self.offset_x) / self.scale_x, (y1 - self.offset_y) / self.scale_y]


def fit(image, height, width, policy="stretch", fill=114):
    """Resize a uint8 picture to (height, width) by policy; returns (uint8 image, Placement).

    stretch: whole image, aspect ignored (what TFLite / Coral reference results use);
    letterbox: whole image, aspect kept, padded with `fill`; crop: centre crop to the aspect, then resize."""
    if policy not in RESIZE_POLICIES:
        raise EdgennError(f"unknown resize policy '{policy}'; choose one of {', '.join(RESIZE_POLICIES)}")
    h, w = image.shape[:2]
    if policy == "stretch":
        return resize_pixels(image, height, width), Placement(width / w, height / h, 0.0, 0.0)
    if policy == "crop":
        scale = max(height / h, width / w)
        crop_h, crop_w = min(h, round(height / scale)), min(w, round(width / scale))
        top, left = (h - crop_h) // 2, (w - crop_w) // 2
        resized = resize_pixels(image[top:top + crop_h, left:left + crop_w], height, width)
        return resized, Placement(width / crop_w, height / crop_h, -left * width / crop_w, -top * height / crop_h)
    scale = min(height / h, width / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    canvas = np.full((height, width) + image.shape[2:], fill, dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = resize_pixels(image, new_h, new_w)
    return canvas, Placement(new_w / w, new_h / h, float(left), float(top))


@dataclass(frozen=True)
class ImageInput:
    """How to turn a picture into one model input: size, channels, resize policy, colour order and
    normalisation real = (pixel - mean) / std. `mean`/`std` None means "take it from the tensor's
    quantization": feed raw pixels to a quantized input, as pycoral does."""
    height: int
    width: int
    channels: int
    layout_has_channels: bool = True
    policy: str = "stretch"
    color: str = "rgb"
    mean: float | None = None
    std: float | None = None

    @classmethod
    def from_tensor(cls, tensor, spec=None):
        """Build from a runtime TensorInfo, overridden by a manifest input entry / options dict."""
        spec = spec or {}
        shape = tuple(tensor.shape)
        if len(shape) == 4 and shape[0] == 1 and shape[3] in (1, 3):
            height, width, channels, has_channels = shape[1], shape[2], shape[3], True
        elif len(shape) == 3 and shape[0] == 1:
            height, width, channels, has_channels = shape[1], shape[2], 1, False
        else:
            raise EdgennError(f"input {tensor.name!r} has shape {list(shape)}, which is not an image "
                              "([1, H, W, 3], [1, H, W, 1] or [1, H, W]); this model needs another runner")
        norm = spec.get("normalization") or {}
        mean, std = spec.get("mean", norm.get("mean")), spec.get("std", norm.get("std"))
        if mean is None and not tensor.quantized and np.issubdtype(tensor.dtype, np.floating):
            mean, std = 0.0, 255.0  # float model without a manifest: pixels scaled to [0, 1]
        return cls(height, width, channels, has_channels, spec.get("resize", "stretch"),
                   spec.get("color", "rgb"), mean, std)

    def prepare(self, image, tensor, order="rgb"):
        """uint8 HxWx3 picture with channels in `order` ("rgb" or "bgr", OpenCV's), or HxW ->
        (array for Model.set_input, Placement)."""
        image = np.asarray(image)
        if image.dtype != np.uint8:  # e.g. an int64 array of an .npz: pixel levels, not wrapped around
            image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        if self.channels == 1 and image.ndim == 3:
            image = _luma(image, order)
        elif self.channels == 3 and image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        pixels, placement = fit(image, self.height, self.width, self.policy)
        if pixels.ndim == 3 and pixels.shape[2] == 3 and order != self.color:
            pixels = swap_red_blue(pixels)  # after the resize: on the model's pixels, not the frame's
        if pixels.ndim == 2 and self.layout_has_channels:
            pixels = pixels[:, :, None]
        pixels = pixels[None]
        if self.mean is None:
            if tensor.dtype == np.int8:  # raw pixels as the quantized value, shifted by 128: p ^ 0x80 is p - 128
                return np.bitwise_xor(pixels, 128).view(np.int8), placement
            return pixels.astype(tensor.dtype, copy=False), placement  # uint8 as-is, float as 0..255
        pixels = pixels.astype(np.float32)
        pixels -= np.float32(self.mean)
        pixels /= np.float32(self.std)
        return pixels, placement
