"""The input normalisation a Keras image model expects, read from the model itself.

    found = from_model(keras_model)   # Preprocessing(mean, std, color, source) or None

Two places hold it: preprocessing layers at the model's input (Rescaling, Normalization, in any
order, also inside a nested base model), and the name of a keras.applications base model whose
`preprocess_input` is outside the model (MobileNetV2 wants [-1, 1], ResNet50 BGR minus the ImageNet
mean...). Layers are read by class name, so this imports no TensorFlow of its own.
"""

from dataclasses import dataclass

import numpy as np

# Layers that pass pictures through unchanged at inference (augmentation is off then).
# Resizing and cropping change the picture's size, not its values.
PASS_THROUGH = ("InputLayer", "RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast", "RandomTranslation",
                "RandomBrightness", "Dropout", "GaussianNoise", "Resizing", "CenterCrop", "Cropping2D")
# keras.applications models without preprocessing layers, by model-name prefix: their preprocess_input
# as pixel normalisation ((pixel - mean) / std, channels in `color` order). Longest prefix first.
APPLICATIONS = (
    (("resnet50v2", "resnet101v2", "resnet152v2", "mobilenetv2", "mobilenet_", "inception_v3", "xception",
      "inception_resnet_v2", "nasnet", "mobilenetv3", "efficientnetv2"), ([127.5], [127.5], "rgb", "[-1, 1]")),
    (("resnet50", "resnet101", "resnet152", "vgg16", "vgg19"),
     ([103.939, 116.779, 123.68], [1.0], "bgr", "BGR minus the ImageNet mean (caffe)")),
    (("densenet",), ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375], "rgb", "ImageNet mean and std (torch)")),
)
# Pixel conventions a model's own preprocessing may have been written for: (mean, std, range).
CONVENTIONS = (([0.0], [1.0], "0-255 pixels"), ([0.0], [255.0], "[0, 1]"), ([127.5], [127.5], "[-1, 1]"))


@dataclass
class Preprocessing:
    mean: list
    std: list
    color: str
    source: str   # one line for the manifest and the report: where it was read


def from_model(model):
    """Preprocessing for a Keras model, or None when the model says nothing about its inputs."""
    layers, nested, _ = _leading_preprocessing(model)
    try:
        a, b = _affine(layers)
    except ValueError:  # per-pixel statistics, not per channel: no pixel normalisation expresses them
        return None
    if not np.allclose(a, 1) or not np.allclose(b, 0):  # an unadapted Normalization alone says nothing
        return _from_layers(layers, a)
    for name in [model.name] + nested:
        for prefixes, (mean, std, color, what) in APPLICATIONS:
            if name.lower().startswith(prefixes):
                return Preprocessing(mean, std, color, f"keras.applications model {name!r} without its "
                                                       f"preprocess_input: {what}")
    return None


def _leading_preprocessing(model):
    """(Rescaling/Normalization layers at the input in order, names of the nested models on the way, whether
    the walk reached a layer that computes). A nested model (augmentation, a base model) is walked into and,
    when it only passes the picture on, past."""
    found, nested = [], []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Rescaling", "Normalization"):
            found.append(layer)
        elif kind in PASS_THROUGH:
            continue
        elif hasattr(layer, "layers"):
            inner, inner_nested, reached = _leading_preprocessing(layer)
            found, nested = found + inner, nested + [layer.name] + inner_nested
            if reached:
                return found, nested, True
        else:
            return found, nested, True
    return found, nested, False


def _affine(layers):
    """(a, b) per channel with y = a * x + b for the chain of layers."""
    a, b = np.ones(1), np.zeros(1)
    for layer in layers:
        if type(layer).__name__ == "Rescaling":
            scale = np.ravel(np.asarray(layer.scale, np.float64))
            offset = np.ravel(np.asarray(layer.offset, np.float64))
            a, b = a * scale, b * scale + offset
        else:
            mean = np.ravel(np.asarray(layer.mean, np.float64))
            std = np.sqrt(np.maximum(np.ravel(np.asarray(layer.variance, np.float64)), 1e-12))
            if getattr(layer, "invert", False):
                a, b = a * std, b * std + mean
            else:
                a, b = a / std, (b - mean) / std
    return a, b


def _from_layers(layers, a):
    """The pixel convention under which the model's own preprocessing gives values of unit scale.

    Rescaling(1/255) over 0-255 pixels gives [0, 1]; over [0, 1] inputs it gives [0, 0.004]. The chosen
    convention is the one whose image under the layers has a width closest to 2 (as [-1, 1] or a
    standardised input has) on the worst channel. a: the layers' scale per channel (_affine)."""

    def misfit(convention):
        mean, std, _ = convention
        low, high = (0 - mean[0]) / std[0], (255 - mean[0]) / std[0]
        width = np.abs(a * (high - low))
        return float(np.max(np.abs(np.log2(np.maximum(width, 1e-12) / 2))))

    mean, std, what = min(CONVENTIONS, key=misfit)
    names = ", ".join(_describe(layer) for layer in layers)
    return Preprocessing(mean, std, "rgb", f"{names} at the model's input: it takes {what}")


def _describe(layer):
    if type(layer).__name__ == "Rescaling":
        return f"Rescaling(scale={_short(layer.scale)}, offset={_short(layer.offset)})"
    inverted = ", invert=True" if getattr(layer, "invert", False) else ""
    return f"Normalization(mean={_short(layer.mean)}, variance={_short(layer.variance)}{inverted})"


def _short(value):
    values = np.ravel(np.asarray(value, np.float64))
    text = ", ".join(f"{v:.4g}" for v in values[:3]) + (", ..." if len(values) > 3 else "")
    return text if len(values) == 1 else f"[{text}]"
