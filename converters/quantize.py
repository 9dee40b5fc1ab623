"""TFLiteConverter set up for each quantization mode, builtin ops only unless Flex is allowed.

Imports TensorFlow: call only inside the conversion child process (see pipeline.py).
"""

import re

from edgenn.errors import EdgennError

MODES = ("float32", "dynamic", "float16", "int8", "int16x8")
CALIBRATED = ("int8", "int16x8")
IO_TYPES = ("float", "int8", "uint8")


def configure(converter, mode, io="float", representative=None, allow_flex=False):
    """Set the converter's options for `mode`; `representative` yields [array] (calibrated modes)."""
    import tensorflow as tf

    if mode not in MODES:
        raise EdgennError(f"unknown --quantize {mode!r}; choose one of {', '.join(MODES)}")
    if io != "float" and mode != "int8":
        raise EdgennError(f"--io {io} needs --quantize int8 (the only mode with integer inputs and outputs)")
    ops = {
        "int8": tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        "int16x8": tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
    }.get(mode, tf.lite.OpsSet.TFLITE_BUILTINS)
    converter.target_spec.supported_ops = [ops] + ([tf.lite.OpsSet.SELECT_TF_OPS] if allow_flex else [])
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in CALIBRATED:
        converter.representative_dataset = representative
    if io != "float":
        converter.inference_input_type = converter.inference_output_type = {"int8": tf.int8, "uint8": tf.uint8}[io]
    return converter


def convert(converter, mode, allow_flex):
    """Model bytes, or EdgennError naming the TensorFlow ops TFLite lacks."""
    try:
        return converter.convert()
    except Exception as exc:  # ConverterError and friends carry MLIR diagnostics
        text = str(exc)
        missing = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)))
        if missing and not allow_flex:
            raise EdgennError(f"the model needs TensorFlow ops that TFLite has no builtin for "
                              f"({', '.join(missing)}), which only Flex (select TF ops) could run and no device "
                              "runtime has Flex; replace those layers, or pass --allow-flex for a host-only model") from None
        if missing:
            raise EdgennError(f"TensorFlow ops {', '.join(missing)} have neither a TFLite builtin nor a Flex "
                              "kernel; replace those layers") from None
        first = next((line.strip() for line in text.splitlines() if "error" in line.lower()), text.strip()[:200])
        raise EdgennError(f"TFLite conversion ({mode}) failed: {first[:300]}") from None
