"""Convert a Keras RNN model to a builtin-only TFLite model: a fixed window, or a streaming step model.

API for the `edgenn convert` pipeline (call it inside its child process; TensorFlow is imported here):

    from edgenn.converters.rnn import convert_rnn, is_recurrent
    if is_recurrent(keras_model):
        result = convert_rnn(keras_model_or_path, mode="int8", io="float",
                             calibration=windows_or_None, eval_data=(windows, labels) or None,
                             streaming=False, frames=None)
        result["tflite"]     # bytes of the converted model (no manifest appended); with streaming,
                             # result["window_tflite"] is the window model it was checked against
        result["manifest"]   # fragments to merge into the bundle manifest:
                             #   "inputs", "quantization", "lowering", "streaming" (when streaming),
                             #   "evaluation" (when eval_data was given)

Calibrated modes (int8, int16x8) of a model that can stream take their window model from the quantized
step model repeated once per frame (converters/rnn_unroll.py), so window and stream share one set of
scales; float modes and window-only models (Bidirectional, pooling) use the Keras unrolling
(rnn_lower.lower_window). `edgenn convert` reaches this module through `pipeline_convert`.

`calibration` and `eval_data` windows are feature arrays [N, time, features(, 1)] computed by the
shared audio front-end; `edgenn.converters.audio_data.load_windows(folder, params, frames)` makes them
from a folder of WAVs (subfolder = label). Modes: float32, dynamic, float16, int8 (io float, int8 or
uint8), int16x8 (io float). User errors raise EdgennError with one line.
"""

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import tflite  # noqa: E402

from edgenn import __version__ as edgenn_version  # noqa: E402
from edgenn.audio_frontend import FrontEndParams  # noqa: E402
from edgenn.bundle import load_labels_file  # noqa: E402
from edgenn.converters import rnn_lower, rnn_unroll  # noqa: E402
from edgenn.errors import EdgennError  # noqa: E402
from edgenn.manifest import new_manifest  # noqa: E402
from edgenn.modelfile import io_tensors, read_contents  # noqa: E402
from edgenn.phrases import phrase_errors  # noqa: E402
from edgenn.runtime import open_model  # noqa: E402
from edgenn.streaming import run_steps  # noqa: E402

MODES = ("float32", "dynamic", "float16", "int8", "int16x8")
CALIBRATED = ("int8", "int16x8")
IO_TYPES = {"float": None, "int8": tf.int8, "uint8": tf.uint8}
CALIBRATION_STEPS = 600  # (frame, state) pairs handed to the calibrator of a step model...
# ...and of one whose every frame's scores are read (CTC phrases): 3000 took the int8 word error rate of a
# phrase model on 200 dev phrases from 11.25 % to 10.62 % (BENCHMARKS.md, "Phrases")
SEQUENCE_CALIBRATION_STEPS = 3000
FORBIDDEN_OPS = ("WHILE",)
GENERATED_WINDOWS = 32  # the float-vs-converted check when no data is given


def is_recurrent(model):
    """True when the Keras model holds a recurrent layer (so it must go through convert_rnn)."""
    names = rnn_lower.RECURRENT + ("Bidirectional",)
    return any(type(layer).__name__ in names for layer in model.layers)


def load_keras(path):
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a wrong or damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgennError(f"{path}: cannot load the Keras model ({first[:200]}); save it with model.save('x.keras')") \
            from None


def _check_options(mode, io, calibration):
    if mode not in MODES:
        raise EdgennError(f"unknown quantization mode {mode!r}; choose one of {', '.join(MODES)}")
    if io not in IO_TYPES:
        raise EdgennError(f"unknown --io {io!r}; choose float, int8 or uint8")
    if io != "float" and mode != "int8":
        raise EdgennError(f"--io {io} needs --quantize int8 (mode {mode} keeps float inputs and outputs)")
    if mode in ("int8", "int16x8") and (calibration is None or len(calibration) == 0):
        raise EdgennError(f"--quantize {mode} needs calibration windows: pass --calibration FOLDER of WAVs "
                          "(subfolder = label)")


def _saved_model(model, folder):
    """Export once (tracing an unrolled model is the slow part); every mode converts from the export.

    Keras' export frees the batch axis whatever the Input says, and a free axis makes every tensor of the
    TFLite model dynamic (shape signature -1), which the Edge TPU compiler refuses: batch 1 is fixed here."""
    from keras.src.export.export_utils import get_input_signature

    def batch_of_one(spec):
        return keras.InputSpec(dtype=spec.dtype, shape=(1, *spec.shape[1:]), name=spec.name)

    signature = keras.tree.map_structure(batch_of_one, get_input_signature(model))
    model.export(folder, format="tf_saved_model", verbose=False, input_signature=signature)
    return folder


def _converter(saved_model, mode, io, representative):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # never Flex
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in ("int8", "int16x8"):
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if mode == "int8"
            else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if IO_TYPES[io] is not None:
        converter.inference_input_type = converter.inference_output_type = IO_TYPES[io]
    return converter


def _convert(saved_model, mode, io, representative, what):
    try:
        data = _converter(saved_model, mode, io, representative).convert()
    except Exception as exc:  # the converter raises ConverterError, RuntimeError, ValueError...
        lines = [line for line in str(exc).splitlines() if "error" in line.lower()] or str(exc).splitlines() or [""]
        hint = " (TFLite has no int16x8 kernel for an op of this model; use --quantize int8)" \
            if mode == "int16x8" else ""
        raise EdgennError(f"TFLite cannot convert the {what} in mode {mode}{hint}: {lines[0].strip()[:300]}") \
            from None
    contents = read_contents(data, what)
    bad = sorted(op.name for op in contents.ops if op.name in FORBIDDEN_OPS or op.name.startswith("Flex"))
    if bad:
        raise EdgennError(f"the {what} converted to {', '.join(bad)}, which edgenn refuses (not builtin-only); "
                          "please report this model to edgenn")
    return data


def _signature_names(data):
    """({signature input name: tensor name}, [output tensor names in signature order]) of the model."""
    model = tflite.Model.GetRootAsModel(data, 0)
    signature = model.SignatureDefs(0)
    subgraph = model.Subgraphs(signature.SubgraphIndex())

    def tensor_name(item):
        return subgraph.Tensors(item.TensorIndex()).Name().decode()

    inputs = {signature.Inputs(i).Name().decode(): tensor_name(signature.Inputs(i))
              for i in range(signature.InputsLength())}
    outputs = {signature.Outputs(i).Name().decode(): tensor_name(signature.Outputs(i))
               for i in range(signature.OutputsLength())}
    # Keras 3 names signature outputs output_0..output_n in the model's output order
    ordered = [outputs[f"output_{i}"] for i in range(len(outputs))] if "output_0" in outputs else list(outputs.values())
    return inputs, ordered


def _streaming_spec(data, spec):
    """The step model's spec with TFLite tensor names and quantization filled in."""
    inputs, outputs = _signature_names(data)
    described = {t["name"]: t for t in [*io_tensors(data)[0], *io_tensors(data)[1]]}
    states = []
    for position, state in enumerate(spec["states"]):
        tensor_in, tensor_out = inputs[state["name"]], outputs[position + 1]
        states.append({**state, "input": tensor_in, "output": tensor_out,
                       "quantization": {"input": described[tensor_in]["quantization"],
                                        "output": described[tensor_out]["quantization"]}})
    return {**spec, "frame_input": inputs["frame"], "scores_output": outputs[0], "states": states}


def _window_representative(windows, progress):
    def generate():
        for window in _bar(windows, progress, "calibrating window model"):
            yield [window[None].astype(np.float32)]
    return generate


def _bar(items, progress, what):
    from edgenn.converters.pipeline import _progress

    return _progress(items, progress, what) if progress is not None else items


def _step_representative(pairs, spec, progress):
    """Real (frame, state) pairs from float runs, keyed by input name, spread over windows and steps."""
    limit = SEQUENCE_CALIBRATION_STEPS if spec.get("sequence_output") else CALIBRATION_STEPS
    steps, batch = len(pairs), len(pairs[0][0])
    picks = np.random.default_rng(0).choice(steps * batch, size=min(limit, steps * batch), replace=False)
    names = [state["name"] for state in spec["states"]]

    def generate():
        for pick in _bar(sorted(picks), progress, "calibrating step model"):
            frame, states = pairs[pick // batch]
            row = pick % batch
            yield {"frame": frame[row:row + 1], **{n: s[row:row + 1] for n, s in zip(names, states)}}
    return generate


def _compare(reference, candidate, labels=None, phrases=None):
    """Scores of two models on the same windows; with labels, accuracy of each (phrases: of whole phrases, and
    the word error rate, decoding greedily; `phrases` = {"blank_index", "ignored": token ids left out of text})."""
    reference, candidate = np.asarray(reference, np.float32), np.asarray(candidate, np.float32)
    result = {"windows": int(len(reference)),
              "max_abs_diff": float(np.max(np.abs(reference - candidate))),
              "mean_abs_diff": float(np.mean(np.abs(reference - candidate))),
              "argmax_agreement": float(np.mean(reference.argmax(-1) == candidate.argmax(-1)))}
    if labels is not None and phrases is not None:
        for key, scores in (("reference", reference), ("", candidate)):
            rate, accuracy = phrase_errors(scores, labels, phrases["blank_index"], phrases["ignored"])
            result["accuracy" + (f"_{key}" if key else "")] = accuracy
            result["word_error_rate" + (f"_{key}" if key else "")] = rate
        result["drop_pp"] = 100.0 * (result["accuracy_reference"] - result["accuracy"])
    elif labels is not None:
        labels = np.asarray(labels)
        result["accuracy_reference"] = float(np.mean(reference.argmax(-1) == labels))
        result["accuracy"] = float(np.mean(candidate.argmax(-1) == labels))
        result["drop_pp"] = 100.0 * (result["accuracy_reference"] - result["accuracy"])
    return result


def _run_window(data, windows):
    model = open_model(data, probe=False)
    return np.stack([model.run(window[None])[0][0] for window in windows])


def _run_stream(data, spec, windows):
    model = open_model(data, probe=False)
    return np.stack([run_steps(model, window, spec)[0] for window in windows])


def convert_rnn(keras_model, mode="float32", io="float", calibration=None, eval_data=None, streaming=False,
                frames=None, calibration_size=200, progress=None, phrases=None):
    """Lower and convert an RNN model; returns {"tflite": bytes, "manifest": {...fragments}} (see module doc).
    progress: a stream for progress bars (shown when it is a terminal); phrases: a CTC model's
    {"blank_index", "ignored"}, its eval_data labels then being token lists."""
    result = convert_rnn_modes(keras_model, [mode], io, calibration, eval_data, streaming, frames, calibration_size,
                               progress, phrases)
    if "error" in result[mode]:
        raise EdgennError(result[mode]["error"])
    return result[mode]


def convert_rnn_modes(keras_model, modes, io="float", calibration=None, eval_data=None, streaming=False,
                      frames=None, calibration_size=200, progress=None, phrases=None):
    """{mode: convert_rnn result, or {"error": one line} for a mode TFLite cannot do}, lowering and tracing once."""
    model = load_keras(keras_model) if isinstance(keras_model, (str, os.PathLike)) else keras_model
    for mode in modes:
        _check_options(mode, io, calibration)
    plan = rnn_lower.analyze(model, frames)
    window_shape = (plan.frames, *plan.frame_shape)
    if calibration is not None:
        calibration = _windows(calibration, window_shape, "calibration")[:calibration_size]
    eval_windows = eval_labels = reference = None
    if eval_data is not None:
        eval_windows, eval_labels = eval_data if isinstance(eval_data, tuple) else (eval_data, None)
        eval_windows = _windows(eval_windows, window_shape, "evaluation")
        # the original model is the float reference, unless stateful (its state would leak between windows)
        reference_model = model if not plan.notes else rnn_lower.lower_window(model, plan=plan, batch_size=None)
        reference = reference_model.predict(eval_windows, verbose=0)
    lowering = {**rnn_lower.WINDOW_LOWERING, "layers": plan.class_names, "notes": plan.notes}
    step = spec = None
    try:
        step, spec = rnn_lower.build_step_model(model, plan=plan)
    except EdgennError:
        if streaming:
            raise
    # calibrated modes of a streamable model: the window is the quantized step model repeated (rnn_unroll)
    from_step = {mode: step is not None and mode in CALIBRATED for mode in modes}
    need_window = not streaming or eval_windows is not None  # streaming is checked against the window
    if any(from_step.values()):
        lowering["calibrated_window"] = rnn_unroll.WHY
    with tempfile.TemporaryDirectory(prefix="edgenn-rnn-") as folder:
        window_saved = step_saved = step_representative = None
        if need_window and not all(from_step.values()):
            window_saved = _saved_model(rnn_lower.lower_window(model, plan=plan), os.path.join(folder, "window"))
        if streaming or any(from_step.values()):
            step_saved = _saved_model(step, os.path.join(folder, "step"))
            if calibration is not None:
                batch_step, _ = rnn_lower.build_step_model(model, plan=plan, batch_size=None)
                step_representative = _step_representative(rnn_lower.step_through(batch_step, calibration, spec)[1],
                                                            spec, progress)
        if streaming:
            lowering["streaming"] = ("single-step model with explicit state inputs/outputs (h, c per recurrent "
                                     "layer, ring buffers for Conv1D context), same weights; states are "
                                     "requantized between steps")
        window_representative = None if calibration is None else _window_representative(calibration, progress)
        results = {}
        for mode in modes:
            quantized = mode in CALIBRATED
            try:
                window_data = step_data = None
                if streaming or from_step[mode]:
                    step_data = _convert(step_saved, mode, io, step_representative if quantized else None,
                                         "step model")
                if need_window and from_step[mode]:
                    window_data = rnn_unroll.unroll_step_model(step_data, _streaming_spec(step_data, spec))
                elif need_window:
                    window_data = _convert(window_saved, mode, io, window_representative if quantized else None,
                                           "window model")
            except EdgennError as exc:
                results[mode] = {"error": str(exc)}
                continue
            data = step_data if streaming else window_data
            manifest = {"inputs": io_tensors(data)[0], "lowering": lowering,
                        "quantization": {"mode": mode, "io": io,
                                         "calibration_size": int(len(calibration)) if quantized else 0}}
            if streaming:
                manifest["streaming"] = _streaming_spec(step_data, spec)
            if eval_windows is not None:
                manifest["evaluation"] = _evaluate(reference, eval_labels, eval_windows, window_data,
                                                   step_data if streaming else None, manifest.get("streaming"), phrases)
            results[mode] = {"tflite": data, "window_tflite": window_data, "manifest": manifest}
    return results


def _evaluate(reference, labels, windows, window_data, step_data, spec, phrases=None):
    window_scores = _run_window(window_data, windows)
    if step_data is None:
        return {"float_vs_quantized": _compare(reference, window_scores, labels, phrases)}
    stream_scores = _run_stream(step_data, spec, windows)
    return {"float_vs_quantized": _compare(reference, stream_scores, labels, phrases),
            "window_float_vs_quantized": _compare(reference, window_scores, labels, phrases),
            "window_vs_streaming": _compare(window_scores, stream_scores)}


def _windows(array, shape, what):
    """Windows as float32 [N, *shape]; adds the trailing channel axis of [time, features, 1] models."""
    array = np.asarray(array, np.float32)
    if array.shape[1:] != shape and array.shape[1:] + (1,) == shape:
        array = array[..., None]
    if array.ndim != len(shape) + 1 or array.shape[1:] != shape:
        raise EdgennError(f"{what} windows have shape {list(array.shape[1:])}, the model needs {list(shape)}; "
                          "give samples of that shape (audio: the model's front-end parameters and window length)")
    return array


# --- the `edgenn convert` hook ------------------------------------------------------------------

def pipeline_convert(model_path, options, progress):
    """The RNN / audio branch of `edgenn convert`: converters/pipeline.py calls it in its child process.

    Returns the pipeline's work dict: "tflite" (the step model with --streaming, else the window model),
    a validated "manifest" (task, labels, audio_frontend, lowering, streaming, quantization, evaluation),
    "labels", "table" rows, "warnings", "edgetpu_report", "extra_files". The parent applies --max-drop
    to evaluation's top-level accuracy_float/accuracy_converted and writes the bundle.

    Front-end parameters, labels and the window length come from options first, then from the model's
    sidecar JSON (MODEL.json beside MODEL.keras, as training/train_speech.py writes it: "frontend",
    "labels", "input_shape"; its "provenance" — training data, licences — goes into the manifest's). A
    streaming bundle holds only the step model; `edgenn listen` runs it in streaming mode, and in window
    mode by replaying each window from zero state. For the faster window
    mode convert again without --streaming (two bundles, as tests/test_listen.py does).

    Data: a folder of WAVs (subfolder = label) through the audio front-end, or arrays (.npz with x/y, a
    folder of .npy; converters/array_data.py) of the model's input shape. A model with no audio front-end
    and no WAVs is a sequence classifier (task classify): RNNs read any time series."""
    from edgenn.converters import array_data
    from edgenn.converters.audio_data import load_phrase_windows, load_windows
    from edgenn.converters.pipeline import AUDIO_TASKS, GENERATED_SOURCE

    say = (lambda text: print(text, file=progress)) if progress.isatty() else (lambda text: None)
    warnings = []
    if options.task not in (None, "classify", *AUDIO_TASKS):
        raise EdgennError(f"{model_path} is a recurrent model; --task {options.task} is for pictures: use --task "
                          "keywords, audio_classify or phrases (audio), or classify (any other sequence)")
    if options.debug_layers:
        warnings.append("--debug-layers is not available for RNN models yet; converted without the per-layer table")
    sidecar = _sidecar(model_path)
    model = load_keras(model_path)
    task = options.task or sidecar.get("task") or _task(options, sidecar)
    if task not in ("classify", *AUDIO_TASKS):
        raise EdgennError(f"{_sidecar_path(model_path)}: unknown task {task!r}; use one of classify, "
                          f"{', '.join(AUDIO_TASKS)}")
    sequence = len(model.outputs[0].shape) == 3
    if task == "phrases" and not sequence:
        raise EdgennError(f"{model_path} gives one score vector per window, not one per frame; --task phrases "
                          "needs a model whose last recurrent layer returns sequences (CTC)")
    if sequence and task in ("keywords", "audio_classify"):
        raise EdgennError(f"{model_path} scores every frame (a CTC phrase model): convert it with --task phrases")
    if task == "classify" and not options.task and not any((options.calibration, options.eval)):
        warnings.append("no audio front-end, WAVs or --task: converted as a sequence classifier (task classify); "
                        "pass --task keywords and --frontend for a speech model")
    params = _frontend_params(getattr(options, "frontend", None), sidecar, warnings) if task != "classify" else None
    frames = getattr(options, "frames", None) or (sidecar.get("input_shape") or [None])[0]
    if model.inputs[0].shape[1] is not None:
        frames = getattr(options, "frames", None)  # a fixed time length needs no --frames (analyze checks it)
    labels = load_labels_file(options.labels) if options.labels else sidecar.get("labels")
    quantized = options.quantize in ("int8", "int16x8")
    plan = rnn_lower.analyze(model, frames)  # the window length before reading any data

    phrases = _phrase_decoder(labels, sidecar) if task == "phrases" else None

    def read(source, limit, what):
        say(f"reading {source} ...")
        if phrases:
            return (*load_phrase_windows(source, params, plan.frames, labels, phrases["vocabulary"], limit,
                                         warnings=warnings), labels)
        if array_data.is_array_source(source):
            return array_data.load_arrays(source, labels, limit, what)
        if params is None:
            raise EdgennError(f"{what} {source}: give an .npz (x, optional y) or a folder of .npy files for a "
                              "sequence model; WAV folders are for --task keywords / audio_classify")
        return load_windows(source, params, plan.frames, labels, limit)

    calibration = evaluation = None
    source = options.eval
    if options.calibration:
        limit = options.num_calibration + (0 if options.eval else options.num_calibration // 4)
        windows, truth, labels = read(options.calibration, limit, "--calibration")
        if options.eval:
            calibration = windows
        else:  # hold back every 5th sample for the evaluation, as for pictures
            held = np.arange(len(windows)) % 5 == 4
            calibration = windows[~held]
            evaluation = (windows[held], None if truth is None else [truth[i] for i in np.flatnonzero(held)])
            source = f"held-back calibration samples (every 5th of {options.calibration})"
    if options.eval:
        windows, truth, labels = read(options.eval, options.num_eval, "--eval")
        evaluation = (windows, truth)
    if evaluation is None or not len(evaluation[0]):
        # no data to check against: random windows still show how far the converted model is from Keras
        shape = (plan.frames, *plan.frame_shape)
        evaluation = (np.random.default_rng(0).standard_normal((GENERATED_WINDOWS, *shape)).astype(np.float32), None)
        source = GENERATED_SOURCE.format(f"{GENERATED_WINDOWS} generated inputs (standard normal")
    n_classes = int(model.outputs[0].shape[-1])
    labels = list(labels) if labels else [f"class{i}" for i in range(n_classes)]
    if len(labels) != n_classes:
        raise EdgennError(f"{len(labels)} labels ({', '.join(labels[:4])}...) but the model has {n_classes} outputs; "
                          "fix --labels or the data's label names / subfolders")

    say(f"converting {model_path} ({options.quantize}{', streaming' if options.streaming else ''}) ...")
    started = time.time()
    result = convert_rnn(model, options.quantize, options.io, calibration if quantized else None, evaluation,
                         options.streaming, frames, calibration_size=len(calibration) if quantized else 0,
                         progress=progress, phrases=phrases and {"blank_index": phrases["blank_index"], "ignored": {
                             labels.index(f) for f in [labels[phrases["blank_index"]], *phrases["filler"]]}})
    seconds = time.time() - started
    fragments = result["manifest"]
    fields = {key: fragments[key] for key in ("lowering", "streaming") if key in fragments}
    table = []
    if "evaluation" in fragments:
        fields["evaluation"] = _pipeline_evaluation(fragments["evaluation"], source)
        table = _table(fields["evaluation"])
    quantization = {**fragments["quantization"], "convert_seconds": round(seconds, 1)}
    if quantized:
        quantization["calibration_source"] = str(options.calibration)
    report = []
    if options.target == "edgetpu":
        from edgenn.converters import edgetpu

        report = edgetpu.report_lines(edgetpu.compatibility(result["tflite"]))
    from edgenn.converters.pipeline import _runtime_support  # one definition of what runs a bundle

    if params is not None:
        fields["audio_frontend"] = params.to_dict()
    if phrases:
        fields["decoder"] = phrases
    manifest = new_manifest(
        options.name or Path(model_path).stem.replace(" ", "_"), task, fragments["inputs"],
        version=options.version, labels=labels, quantization=quantization,
        target=options.target, runtime_support=_runtime_support(result["tflite"], options, []),
        provenance={"source": Path(model_path).name, "source_sha256": _sha256(model_path),
                    "tensorflow": tf.__version__, "keras": keras.__version__, "edgenn": edgenn_version,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    **(sidecar.get("provenance") or {})},  # training data and its licence, as the trainer says
        **fields)
    return {"tflite": result["tflite"], "manifest": manifest, "labels": labels, "table": table,
            "warnings": warnings + fragments["lowering"]["notes"], "edgetpu_report": report, "extra_files": []}


def _task(options, sidecar):
    """keywords when anything says the model hears audio (a front-end, WAV data), else classify: RNNs read any
    sequence."""
    from edgenn.converters.array_data import is_array_source

    sources = [s for s in (options.calibration, options.eval) if s]
    audio = getattr(options, "frontend", None) or sidecar.get("frontend") or \
        any(not is_array_source(s) for s in sources)
    return "keywords" if audio else "classify"


def _phrase_decoder(labels, sidecar):
    """The manifest's decoder of a CTC phrase model: blank index, filler tokens, the words it can say."""
    if not labels:
        raise EdgennError("a phrase model needs its vocabulary: --labels FILE (one token a line, the CTC blank "
                          "named _blank_) or a MODEL.json with \"labels\"")
    blank = labels.index("_blank_") if "_blank_" in labels else sidecar.get("blank_index")
    if blank is None:
        raise EdgennError("which token is the CTC blank? name it _blank_ in the labels, or give \"blank_index\" in "
                          "MODEL.json")
    if not isinstance(blank, int) or isinstance(blank, bool) or not 0 <= blank < len(labels):
        raise EdgennError(f"blank_index {blank!r} in MODEL.json is not one of the {len(labels)} labels (0 to "
                          f"{len(labels) - 1}); fix it, or name the blank _blank_ in the labels")
    return {"kind": "phrases", "blank_index": int(blank),
            "filler": [t for i, t in enumerate(labels) if t.startswith("_") and i != blank],
            "vocabulary": [t for i, t in enumerate(labels) if not t.startswith("_") and i != blank]}


def _sidecar_path(model_path):
    return Path(model_path).with_suffix(".json")


def _sidecar(model_path):
    """MODEL.json beside the model ({} when there is none)."""
    path = _sidecar_path(model_path)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgennError(f"{path}: the model's sidecar JSON is not valid ({exc}); fix or remove it") from None


def _frontend_params(option, sidecar, warnings):
    if option:
        path = Path(option)
        if option == "mlcommons_kws":
            return FrontEndParams.mlcommons_kws()
        if path.suffix == ".json" and path.is_file():
            data = json.loads(path.read_text())
            return FrontEndParams.from_dict(data.get("frontend", data))
        raise EdgennError(f"unknown --frontend {option!r}; use mlcommons_kws or a .json of front-end parameters")
    if sidecar.get("frontend"):
        return FrontEndParams.from_dict(sidecar["frontend"])
    warnings.append("no front-end parameters (no MODEL.json beside the model, no --frontend): used edgenn's "
                    "defaults (40 log-mels, 25 ms windows, 20 ms hops); check they match the training")
    return FrontEndParams()


def _pipeline_evaluation(evaluation, source):
    """The manifest's evaluation: the bundle's figures on top (what --max-drop reads), details below."""
    bundle = evaluation["float_vs_quantized"]
    summary = {"samples": bundle["windows"], "source": source,
               "top1_agreement": round(bundle["argmax_agreement"], 4),
               "max_abs_score_delta": round(bundle["max_abs_diff"], 5)}
    if "accuracy" in bundle:
        summary.update(accuracy_float=round(bundle["accuracy_reference"], 4),
                       accuracy_converted=round(bundle["accuracy"], 4))
    if "word_error_rate" in bundle:
        summary.update(word_error_rate_float=round(bundle["word_error_rate_reference"], 4),
                       word_error_rate_converted=round(bundle["word_error_rate"], 4))
    rounded = {name: {key: round(value, 5) if isinstance(value, float) else value for key, value in part.items()}
               for name, part in evaluation.items()}
    return {**summary, **rounded}


def _table(evaluation):
    rows = [("samples", str(evaluation["samples"]), "")]
    if "accuracy_float" in evaluation:
        rows.append(("phrase accuracy" if "word_error_rate_float" in evaluation else "accuracy",
                     f"{100 * evaluation['accuracy_float']:.2f} %", f"{100 * evaluation['accuracy_converted']:.2f} %"))
    if "word_error_rate_float" in evaluation:
        rows.append(("word error rate", f"{100 * evaluation['word_error_rate_float']:.2f} %",
                     f"{100 * evaluation['word_error_rate_converted']:.2f} %"))
    rows += [("top-1 agreement", "", f"{100 * evaluation['top1_agreement']:.2f} %"),
             ("max |Δ score|", "", f"{evaluation['max_abs_score_delta']:.4g}")]
    if "window_vs_streaming" in evaluation:
        window, versus = evaluation["window_float_vs_quantized"], evaluation["window_vs_streaming"]
        if "accuracy" in window:
            rows.append(("window accuracy", f"{100 * window['accuracy_reference']:.2f} %",
                         f"{100 * window['accuracy']:.2f} %"))
        rows += [("window=stream top1", "", f"{100 * versus['argmax_agreement']:.2f} %"),
                 ("window-stream |Δ|", "", f"{versus['max_abs_diff']:.4g}")]
    return rows


def _sha256(path):
    path = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        digest.update(file.read_bytes())
    return digest.hexdigest()
