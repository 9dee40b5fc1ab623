"""One picture in, labelled results out: preprocessing and decoder chosen from a bundle's manifest,
or from the model's tensors and options for third-party models."""

from dataclasses import dataclass, field

import numpy as np

from edgenn.adapters import classify, grid, ssd, yolov8
from edgenn.errors import EdgennError
from edgenn.image import ImageInput
from edgenn.runtime import dequantize

DECODERS = ("topk", "ssd_postprocess", "yolov8", "edgenn_grid")
TASK_OF_DECODER = {"topk": "classify", "ssd_postprocess": "detect", "yolov8": "detect", "edgenn_grid": "detect"}


def guess_decoder(model):
    """Decoder kind from output tensors: four outputs = SSD post-processed, one [1, 4+C, N] = YOLOv8,
    one [1, S, S, 5+C] = edgenn grid, one [1, C] = classification."""
    shapes = [tensor.shape for tensor in model.outputs]
    if len(shapes) == 4 and any(len(s) == 3 and s[-1] == 4 for s in shapes):
        return "ssd_postprocess"
    if len(shapes) == 1:
        shape = shapes[0]
        if len(shape) == 2:
            return "topk"
        if len(shape) == 3 and min(shape[1:]) > 4 and max(shape[1:]) >= 64:
            return "yolov8"
        if len(shape) == 4 and shape[1] == shape[2] and shape[3] >= 6:
            return "edgenn_grid"
    raise EdgennError(f"cannot tell how to decode outputs {[list(s) for s in shapes]}; "
                      f"pass --decoder ({', '.join(DECODERS)})")


# decoder -> the output layout it reads, as said to a user whose model has another
LAYOUTS = {"topk": "one output of class scores [1, C]",
           "ssd_postprocess": "four outputs: boxes [1, N, 4], classes [1, N], scores [1, N], count [1]",
           "yolov8": "one output [1, 4 + C, N] or [1, N, 4 + C]",
           "edgenn_grid": "one output [1, S, S, 5 + C]"}


def layout_fits(decoder, shapes):
    """Whether output SHAPES have the layout DECODER reads (the decoders index them without checking)."""
    first = shapes[0] if shapes else ()
    if decoder == "topk":  # one axis longer than 1: [1, C], [C], [1, 1, 1, C]
        return int(np.prod(first)) == max(first, default=0) > 0
    if decoder == "ssd_postprocess":
        return len(shapes) == 4 and any(len(s) == 3 and s[-1] == 4 for s in shapes) and \
            any(int(np.prod(s)) == 1 for s in shapes) and sum(len(s) == 2 and s[-1] > 1 for s in shapes) == 2
    if decoder == "yolov8":
        return len(shapes) == 1 and len(first) == 3 and min(first[1:]) > 4
    # edgenn_grid, with or without the batch axis
    return len(shapes) == 1 and len(first) in (3, 4) and first[-3] == first[-2] and first[-1] >= 6


def class_count(decoder, model):
    """How many classes the model's outputs score under DECODER; None when the layout does not say (SSD)."""
    first = model.outputs[0].shape
    if decoder == "topk":
        return int(np.prod(first))
    if decoder == "yolov8":
        return min(first[1:]) - 4
    if decoder == "edgenn_grid":
        return first[-1] - 5
    return None


def check_layout(decoder, model):
    """Refuse a decoder whose output layout the model does not have, naming the one that fits."""
    shapes = [tuple(tensor.shape) for tensor in model.outputs]
    if layout_fits(decoder, shapes):
        return
    try:
        advice = f"this model looks like {guess_decoder(model)}: leave --decoder out or pass that one"
    except EdgennError:
        advice = "check that the model is an image classifier or detector"
    raise EdgennError(f"decoder {decoder} reads {LAYOUTS[decoder]}, but {model.source} outputs "
                      f"{[list(s) for s in shapes]}; {advice}")


@dataclass
class VisionTask:
    """A model made ready for pictures. Build with VisionTask.create()."""
    model: object
    image_input: ImageInput
    decoder: str
    labels: list = field(default_factory=list)
    threshold: float = 0.5
    iou_threshold: float = 0.45
    max_detections: int = 20
    top_k: int = 3

    @classmethod
    def create(cls, model, manifest=None, labels=None, decoder=None, threshold=None, **options):
        """model: an opened edgenn.runtime.Model. Manifest values win over guesses; options win over both."""
        manifest = manifest or {}
        if len(model.inputs) != 1:
            raise EdgennError(f"{model.source} has {len(model.inputs)} inputs; an image model has exactly one")
        spec = dict((manifest.get("inputs") or [{}])[0])
        spec.update({k: options.pop(k) for k in ("resize", "color", "mean", "std") if options.get(k) is not None})
        image_input = ImageInput.from_tensor(model.inputs[0], spec)
        decoder_spec = manifest.get("decoder", {})
        decoder = decoder or decoder_spec.get("kind") or guess_decoder(model)
        if decoder not in DECODERS:
            raise EdgennError(f"unknown decoder '{decoder}'; choose one of {', '.join(DECODERS)}")
        check_layout(decoder, model)
        if threshold is None:
            threshold = decoder_spec.get("score_threshold", 0.0 if decoder == "topk" else 0.5)
        for key in ("iou_threshold", "max_detections", "top_k"):
            if options.get(key) is None and key in decoder_spec:
                options[key] = decoder_spec[key]
        options = {k: v for k, v in options.items() if v is not None}
        return cls(model, image_input, decoder, list(labels or manifest.get("labels") or []), threshold, **options)

    @property
    def task(self):
        return TASK_OF_DECODER[self.decoder]

    def label(self, label_id):
        return self.labels[label_id] if 0 <= label_id < len(self.labels) else str(label_id)

    def predict(self, image_rgb):
        """Classes (classify) or Detections (detect) for one RGB uint8 picture."""
        array, context = self.prepare(image_rgb)
        return self.decode(self.model.run(array), context)

    def prepare(self, image, order="rgb"):
        """(input array, context for decode()) of one uint8 picture, channels in `order` ("rgb" or
        OpenCV's "bgr"); lets a pipeline prepare the next frame while the model runs."""
        array, placement = self.image_input.prepare(image, self.model.inputs[0], order)
        height, width = np.asarray(image).shape[:2]
        return array, (placement, (width, height))

    def decode(self, outputs, context, raw=False):
        """Classes or Detections from the model's outputs and prepare()'s context. Outputs are dequantized,
        or with raw=True the tensors' own values: then only what the decoder reads is dequantized
        (YOLOv8n: the few candidates of 8400 that pass, not all 0.7 M values)."""
        placement, (width, height) = context
        input_size = (self.image_input.width, self.image_input.height)
        if self.decoder == "yolov8":  # dequantizes only the candidates that pass
            tensor = self.model.outputs[0]
            return yolov8.decode(outputs[0], input_size, placement, (width, height), self.threshold,
                                 self.iou_threshold, self.max_detections, tensor if raw and tensor.quantized else None)
        if raw:
            outputs = [dequantize(o, t) if t.quantized else o for o, t in zip(outputs, self.model.outputs)]
        if self.decoder == "topk":
            return classify.top_k(outputs[0], self.top_k, self.threshold)
        if self.decoder == "ssd_postprocess":
            return ssd.decode(outputs, (width, height), placement, input_size, self.threshold, self.max_detections)
        detections = grid.decode(outputs[0], self.threshold, self.iou_threshold, self.max_detections, input_size)
        return [d.placed(placement) for d in detections]
