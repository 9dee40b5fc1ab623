"""Loading a trained model for conversion: a Keras 3 `.keras`, a legacy `.h5`, or a SavedModel folder.

Imports TensorFlow: call only inside the conversion child process (see pipeline.py).
"""

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgenn.errors import EdgennError

RECURRENT = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")


@dataclass
class Loaded:
    """A model ready for TFLiteConverter, with batch fixed to 1."""
    name: str
    input_shapes: list          # [[1, H, W, C], ...]
    output_shapes: list
    keras_model: object = None  # a keras.Model (from_keras_model) ...
    saved_model: str = None     # ... or a SavedModel folder (from_saved_model)
    function: object = None     # the SavedModel's serving function
    input_key: str = None       # its (keyword-only) input name
    recurrent: bool = False     # holds recurrent layers: the RNN path converts it (see pipeline.py)

    def predict(self, inputs, batch=64):
        """Float outputs (list, one array per output) for one batch of single-input samples."""
        if self.keras_model is not None:
            outputs = self.keras_model.predict(inputs, batch_size=batch, verbose=0)
            return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
        import tensorflow as tf

        parts = []
        for start in range(len(inputs)):
            result = self.function(**{self.input_key: tf.constant(inputs[start:start + 1])})
            parts.append([np.asarray(result[k]) for k in sorted(result)])
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]

    def converter(self):
        import tensorflow as tf

        if self.keras_model is not None:
            return tf.lite.TFLiteConverter.from_keras_model(self.keras_model)
        return tf.lite.TFLiteConverter.from_saved_model(self.saved_model)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def load(path, input_size=None):
    """Load MODEL; EdgennError when it is not a model this converter reads."""
    path = Path(path)
    if not path.exists():
        raise EdgennError(f"{path}: no such file or folder; check the model path")
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise EdgennError(f"{path}: a folder but not a SavedModel (no saved_model.pb); "
                              "give a .keras file, an .h5 file or a SavedModel folder")
        return _load_saved_model(path)
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise EdgennError(f"{path}: not a Keras model file (.keras, .h5) or SavedModel folder")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise EdgennError(f"{path}: not a Keras 3 model (a .keras file is a zip archive); "
                          "save the model with model.save('name.keras')")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors... for a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EdgennError(f"{path}: Keras cannot load this model ({first}); give a Keras 3 .keras file, "
                          "an .h5 that Keras 3 reads, or a SavedModel folder") from None
    if any(type(layer).__name__ in RECURRENT for layer in _all_layers(model)):
        return Loaded(path.stem, [list(t.shape) for t in model.inputs], [list(t.shape) for t in model.outputs],
                      keras_model=model, recurrent=True)
    return _fix_batch(model, path.stem, input_size)


def _fix_batch(model, name, input_size):
    """The same model with a static batch of 1 (and a fixed picture size when given): devices and
    the Edge TPU want static shapes."""
    import keras

    inputs = []
    for tensor in model.inputs:
        shape = list(tensor.shape[1:])
        if input_size and len(shape) >= 2:
            shape[0], shape[1] = input_size
        if any(d is None for d in shape):
            raise EdgennError(f"{name}: input {tensor.name!r} has free dimensions {['?' if d is None else d for d in shape]};"
                              " pass --input-size HxW")
        inputs.append(keras.Input(tuple(shape), batch_size=1, name=tensor.name, dtype=tensor.dtype))
    outputs = model(inputs[0] if len(inputs) == 1 else inputs)
    fixed = keras.Model(inputs, outputs, name=model.name)
    return Loaded(name, [list(t.shape) for t in fixed.inputs], [list(t.shape) for t in fixed.outputs],
                  keras_model=fixed)


def _load_saved_model(path):
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        function = loaded.signatures["serving_default"]
    except (KeyError, OSError, ValueError) as exc:
        raise EdgennError(f"{path}: cannot load this SavedModel ({type(exc).__name__}); "
                          "it needs a 'serving_default' signature") from None
    signature = function.structured_input_signature[1]
    specs = [signature[k] for k in sorted(signature)]
    outputs = function.structured_outputs
    input_shapes = [[1 if d is None else d for d in spec.shape.as_list()] for spec in specs]
    output_shapes = [[1 if d is None else d for d in outputs[k].shape.as_list()] for k in sorted(outputs)]
    loaded_model = Loaded(path.name, input_shapes, output_shapes, saved_model=str(path), function=function,
                          input_key=sorted(signature)[0] if signature else None)
    loaded_model.keep_alive = loaded  # the function needs its object graph alive
    return loaded_model
