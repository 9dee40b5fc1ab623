"""`edgenn convert` as a library call: Keras model in, checked and evaluated bundle out.

    from edgenn.converters.pipeline import Options, convert
    result = convert("model.keras", "model.tflite", Options(quantize="int8", calibration="cal/"))

Steps (all TensorFlow work runs in a child process started with the 'spawn' method, so a crash
inside TensorFlow — the calibrator segfaults on WHILE loops — becomes one error line and the
caller never imports TensorFlow):
  1. load the model (keras_model.load), batch fixed to 1;
  2. the RNN hook: a model with recurrent layers, or an audio task (keywords, audio_classify),
     goes to `edgenn.converters.rnn.pipeline_convert(model_path, options, progress)`, which runs in
     this same child and returns the work dict _convert_one returns ("tflite", a validated
     "manifest", "labels", "table" rows, "warnings", "edgetpu_report", "extra_files"); the parent
     then gates and writes it like any other. CNNs go on here:
  3. data: calibration and evaluation samples through data.load, which preprocesses with
     edgenn.image exactly as the camera runner does;
  4. convert in the chosen mode with builtin ops only (Flex only with allow_flex, with a warning);
  5. evaluate the float model against the converted one on the same inputs (evaluate.compare);
  6. the parent applies --max-drop, runs edgetpu_compiler when asked and present, and writes the
     bundle atomically: no output file appears after a failure or Ctrl-C.
"""

import dataclasses
import hashlib
import importlib.util
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from edgenn import __version__
from edgenn.bundle import load_labels_file, save_bundle
from edgenn.errors import EdgennError

IMAGE_TASKS = ("classify", "detect")
AUDIO_TASKS = ("keywords", "audio_classify", "phrases")
GENERATED_PICTURES = 16  # the float-vs-converted check when no data is given
GENERATED_SOURCE = "{}; no --calibration or --eval data)"  # how that evaluation's "source" reads
DEFAULT_DECODER = {"kind": "edgenn_grid", "score_threshold": 0.3, "iou_threshold": 0.45, "max_detections": 10}


@dataclass
class Options:
    task: str = None                 # classify | detect | keywords | audio_classify; guessed when None
    quantize: str = "int8"           # float32 | dynamic | float16 | int8 | int16x8
    io: str = "float"                # float | int8 | uint8 (int8 mode only)
    calibration: str = None          # folder, .npz or module:function
    eval: str = None                 # same kinds; default: every 5th calibration sample held back
    labels: str = None               # labels file, one per line
    name: str = None
    version: str = "1"
    target: str = "cpu"              # cpu | edgetpu
    max_drop: float = None           # percentage points
    allow_flex: bool = False
    num_calibration: int = 200
    num_eval: int = 500
    debug_layers: str = None         # PREFIX: writes PREFIX.csv and PREFIX.png
    input_size: tuple = None         # (H, W) for models with free picture size
    mean: list = None                # normalisation (pixel - mean) / std; None: read from the model ...
    std: list = None                 # ... (its preprocessing layers, a known base model), else 0 / 255
    resize: str = "stretch"
    color: str = None                # rgb | bgr; None: from the model, else rgb
    force: bool = False              # convert even when the float model scores near chance on labelled data
    score_threshold: float = None    # detectors
    streaming: bool = False          # RNN hook
    frames: int = None               # RNN hook: window length of a model with free time length
    frontend: str = None             # RNN hook: mlcommons_kws or a .json of front-end parameters (default: MODEL.json)


@dataclass
class Result:
    output: str
    manifest: dict
    size_bytes: int
    evaluation_table: list = field(default_factory=list)
    edgetpu_report: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    extra_files: list = field(default_factory=list)
    seconds: float = 0.0


def check_options(model, output, options):
    """Problems found without TensorFlow, before the child starts."""
    from edgenn.converters.quantize import CALIBRATED, IO_TYPES, MODES

    if options.target == "edgetpu":
        if options.quantize not in ("int8",):
            raise EdgennError(f"--target edgetpu needs full int8; drop --quantize {options.quantize} or use int8")
        if options.io == "float":
            options.io = "uint8"
    if options.quantize not in MODES:
        raise EdgennError(f"unknown --quantize {options.quantize!r}; choose one of {', '.join(MODES)}")
    if options.io not in IO_TYPES:
        raise EdgennError(f"unknown --io {options.io!r}; choose one of {', '.join(IO_TYPES)}")
    if options.io != "float" and options.quantize != "int8":
        raise EdgennError(f"--io {options.io} needs --quantize int8 (the only mode with integer inputs and outputs)")
    if options.quantize in CALIBRATED and not options.calibration:
        raise EdgennError(f"--quantize {options.quantize} needs --calibration DATA (a folder of images, an .npz "
                          "or module:function); or choose float32, float16 or dynamic")
    if not Path(model).exists():
        raise EdgennError(f"{model}: no such file or folder; check the model path")
    folder = Path(output).parent
    if not folder.is_dir():
        raise EdgennError(f"{folder}: output folder does not exist; create it or choose another -o path")
    if Path(output).suffix != ".tflite":
        raise EdgennError(f"{output}: the output must be a .tflite file (-o model.tflite)")
    if options.labels:
        load_labels_file(options.labels)
    from edgenn.converters import array_data, data

    for source, what in ((options.calibration, "--calibration"), (options.eval, "--eval")):
        if source and options.task not in AUDIO_TASKS and not any(Path(source).rglob("*.wav")) \
                and not array_data.is_array_source(source):
            data.precheck(source, what)


def convert(model, output, options=None):
    """Convert MODEL to the bundle OUTPUT; returns Result. EdgennError (one line) on any failure,
    and then OUTPUT is not created."""
    return convert_all([(model, output, options or Options())])[0]


def convert_all(jobs):
    """Several conversions [(model, output, Options)] in one child (TensorFlow loads once); returns
    [Result]. The first failure raises EdgennError; bundles of jobs before it are written."""
    for model, output, options in jobs:
        check_options(model, output, options)
    start = time.time()
    works = run_child(_convert_jobs, [(str(m), o) for m, _, o in jobs], what=f"converting {jobs[0][0]}")
    results = []
    for (model, output, options), work in zip(jobs, works):
        results.append(_finish(output, options, work, time.time() - start))
    return results


def _finish(output, options, work, seconds):
    """Quality gate, Edge TPU compilation and the atomic write of one converted model."""
    warnings = work["warnings"]
    manifest = work["manifest"]
    generated = GENERATED_SOURCE.format("") in manifest.get("evaluation", {}).get("source", "")
    if options.max_drop is not None and generated:
        warnings.append("--max-drop not applied: with no data the comparison ran on made-up inputs")
    elif options.max_drop is not None and "top1_agreement" in manifest.get("evaluation", {}):
        from edgenn.converters.evaluate import quality_drop

        drop = quality_drop(manifest["evaluation"])
        if drop > options.max_drop:
            raise EdgennError(f"quality dropped {drop:.2f} pp (more than --max-drop {options.max_drop:g}); "
                              f"no file written: try more or better --calibration data, or another --quantize mode")
    extra = []
    if options.target == "edgetpu":
        from edgenn.converters.edgetpu import compile_model

        compiled = compile_model(work["tflite"])
        if compiled is None:
            warnings.append("edgetpu_compiler is not on PATH: kept the int8 CPU model; compile it on a machine "
                            "with Coral's compiler (edgetpu_compiler MODEL)")
        else:
            edgetpu_path = str(Path(output).with_name(Path(output).stem + "_edgetpu.tflite"))
            save_bundle(edgetpu_path, compiled, {**manifest, "target": "edgetpu"}, work["labels"])
            extra.append(edgetpu_path)
    data = save_bundle(output, work["tflite"], manifest, work["labels"])
    return Result(str(output), manifest, len(data), work["table"], work["edgetpu_report"], warnings,
                  extra + work["extra_files"], round(seconds, 1))


# --- the child ---------------------------------------------------------------------------------

def run_child(func, *args, what="the conversion"):
    """func(*args, log=PATH) in a spawned child; its stdout/stderr noise goes to a log file.
    Returns its result; EdgennError for its errors, crashes and Ctrl-C."""
    fd, log = tempfile.mkstemp(prefix="edgenn-convert-", suffix=".log")
    os.close(fd)
    context = multiprocessing.get_context("spawn")
    parent_conn, child_conn = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(child_conn, func, args, log), daemon=True)
    process.start()
    child_conn.close()
    keep_log = False
    try:
        try:
            message = parent_conn.recv()
        except EOFError:
            message = None
        process.join(30)
        if message is None:
            keep_log = True
            code = process.exitcode
            cause = (signal.Signals(-code).name if code and -code in signal.Signals._value2member_map_
                     else f"exit code {code}")
            raise EdgennError(f"{what}: TensorFlow crashed ({cause}); no file written; details in {log}")
        if message[0] == "error":
            raise EdgennError(message[1])
        if message[0] == "crash":
            keep_log = True
            with open(log, "a") as handle:
                handle.write(message[2])
            raise EdgennError(f"{what} failed: {message[1]}; no file written; details in {log}")
        return message[1]
    finally:
        if process.is_alive():
            process.kill()
            process.join(5)
        if not keep_log and os.path.exists(log):
            os.unlink(log)


def _child_main(conn, func, args, log):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    progress = os.fdopen(os.dup(2), "w", buffering=1)
    with open(log, "ab", buffering=0) as noise:  # TensorFlow's C++ and Python chatter
        os.dup2(noise.fileno(), 1)
        os.dup2(noise.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    try:
        conn.send(("ok", func(*args, progress=progress)))
    except EdgennError as exc:
        conn.send(("error", str(exc)))
    except KeyboardInterrupt:
        conn.send(("error", "interrupted; no file written"))
    except BaseException as exc:
        conn.send(("crash", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}",
                   traceback.format_exc()))
    finally:
        conn.close()


def _convert_jobs(jobs, progress):
    from edgenn.converters import keras_model

    cache = {}
    works = []
    for model, options in jobs:
        key = (model, options.input_size)
        if key not in cache:
            cache[key] = keras_model.load(model, options.input_size)
        if cache[key].recurrent or options.task in AUDIO_TASKS:
            hook = _hook("rnn", "pipeline_convert", "a recurrent model or an audio task")
            works.append(hook(model, options, progress))
        else:
            works.append(_convert_one(model, cache[key], options, progress))
    return works


def _convert_one(model, loaded, options, progress):
    from edgenn.converters import evaluate, quantize
    from edgenn.modelfile import read_contents

    warnings = []
    say = (lambda text: print(text, file=progress)) if progress.isatty() else (lambda text: None)
    task = _task(loaded, options)
    _check_image_model(loaded, model)
    options = dataclasses.replace(options)  # filled in below; jobs may share one Options
    normalization_source = _resolve_preprocessing(loaded, options)
    say(f"input normalisation: {normalization_source}")
    calibration, evaluation_set = _samples(loaded, options)
    if evaluation_set is not None and task in IMAGE_TASKS:
        kind = list if task == "detect" else int  # a folder's class names are no boxes, and vice versa
        evaluation_set.truth = [t if isinstance(t, kind) else None for t in evaluation_set.truth]
    labels = _labels(loaded, task, options, calibration or evaluation_set, evaluation_set, warnings)
    float_out = None if evaluation_set is None else loaded.predict(evaluation_set.inputs)  # once: guard + report
    if task == "classify" and not options.force:  # the evaluation set: its truth follows the model's label order
        _refuse_near_chance(options, normalization_source, evaluation_set, float_out)

    converter = loaded.converter()
    representative = None
    if options.quantize in quantize.CALIBRATED:
        def representative():
            for x in _progress(calibration.inputs, progress, "calibrating"):
                yield [x[None]]
    quantize.configure(converter, options.quantize, options.io, representative, options.allow_flex)
    say(f"converting {model} ({options.quantize}"
        + (f", {len(calibration)} calibration samples" if representative else "") + ") ...")
    started = time.time()
    tflite = quantize.convert(converter, options.quantize, options.allow_flex)
    seconds = time.time() - started

    contents = read_contents(tflite, "converted model")
    if contents.flex_ops:
        warnings.append(f"the model uses Flex ops ({', '.join(contents.flex_ops)}): no device runtime "
                        "(LiteRT, tflite-runtime, Edge TPU) runs them; it is for a host with TensorFlow only")
    table, evaluation = [], None
    evaluated_on = options.eval or "held-back calibration samples (every 5th)"
    if evaluation_set is None:  # still compare the two models, on pictures made up for it
        from edgenn.converters import data

        evaluation_set = data.generated(loaded.input_shapes[0], _normalization(options), GENERATED_PICTURES,
                                        options.resize, options.color)
        evaluated_on = GENERATED_SOURCE.format(f"{GENERATED_PICTURES} generated pictures (random pixels")
        float_out = loaded.predict(evaluation_set.inputs)
    if not contents.flex_ops:
        say(f"evaluating on {len(evaluation_set)} samples ...")
        quant_out = evaluate.run_tflite(tflite, evaluation_set.inputs)
        decoder = _decoder(loaded, task, options)
        evaluation = evaluate.compare(task, evaluation_set, float_out,
                                      quant_out, decoder)
        evaluation["source"] = evaluated_on
        table = evaluate.table(evaluation)
    extra = []
    if options.debug_layers and options.quantize in quantize.CALIBRATED:
        from edgenn.converters import debug_layers

        say("per-layer quantization error ...")
        debug = quantize.configure(loaded.converter(), options.quantize, "float", representative, options.allow_flex)
        extra += debug_layers.write(debug, representative, options.debug_layers)
    elif options.debug_layers:
        warnings.append(f"--debug-layers needs a calibrated mode (int8, int16x8); {options.quantize} has none")

    report = []
    if options.target == "edgetpu":
        from edgenn.converters import edgetpu

        report = edgetpu.report_lines(edgetpu.compatibility(tflite))
    manifest = _manifest(model, loaded, task, labels, options, tflite, calibration, evaluation, seconds)
    manifest["inputs"][0]["normalization_source"] = normalization_source
    return {"tflite": tflite, "manifest": manifest, "labels": labels, "table": table, "warnings": warnings,
            "edgetpu_report": report, "extra_files": extra}


def _hook(name, function, what):
    """edgenn.converters.<name>.<function>, a plug-in of the pipeline; a clear error without it."""
    module = f"edgenn.converters.{name}"
    found = importlib.util.find_spec(module) is not None and getattr(importlib.import_module(module), function, None)
    if not found:
        raise EdgennError(f"{what} needs {module}.{function}, which this edgenn does not have; upgrade edgenn")
    return found


def _progress(items, stream, what):
    if not stream.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=what, file=stream, unit="sample", leave=False)


def _task(loaded, options):
    if options.task:
        return options.task
    shape = loaded.output_shapes[0] if len(loaded.output_shapes) == 1 else None
    if shape is not None and len(shape) == 2:
        return "classify"
    if shape is not None and len(shape) == 4 and shape[1] == shape[2] and shape[3] >= 6:
        return "detect"
    raise EdgennError(f"cannot tell the task from outputs {loaded.output_shapes}; pass --task "
                      f"({', '.join(IMAGE_TASKS + AUDIO_TASKS)})")


def _check_image_model(loaded, model):
    if len(loaded.input_shapes) != 1:
        raise EdgennError(f"{model} has {len(loaded.input_shapes)} inputs {loaded.input_shapes}; an image "
                          "classifier or detector takes exactly one picture")
    shape = loaded.input_shapes[0]
    if not ((len(shape) == 4 and shape[3] in (1, 3)) or len(shape) == 3):
        raise EdgennError(f"{model}: input shape {shape} is not a picture ([1, H, W, 3], [1, H, W, 1] or [1, H, W])")


def _resolve_preprocessing(loaded, options):
    """Fill in options.mean/std/color that were not given, from the model; returns where they came from."""
    from edgenn.converters import preprocessing

    given = [flag for flag, value in (("--mean", options.mean), ("--std", options.std)) if value is not None]
    found = None if len(given) == 2 or loaded.keras_model is None else preprocessing.from_model(loaded.keras_model)
    if found is None:
        found = preprocessing.Preprocessing([0.0], [255.0], "rgb", "the default, pixel / 255 (no preprocessing "
                                            "layer or known base model at the input; a model that calls "
                                            "preprocess_input itself needs --mean/--std for that range)")
    options.mean = found.mean if options.mean is None else options.mean
    options.std = found.std if options.std is None else options.std
    options.color = options.color or found.color
    if len(given) == 2:
        return "--mean/--std"
    return f"{given[0]}, the rest from {found.source}" if given else found.source


# Below this share of the way from chance to perfect, the float model is not reading the data it was trained on.
NEAR_CHANCE = 0.25
MIN_LABELLED = 12


def _refuse_near_chance(options, source, samples, float_out):
    """EdgennError when the float model itself (its outputs `float_out` on `samples`) scores near chance on the
    labelled data: the pictures reach it normalised differently from training, or the folder order is not the
    model's label order."""
    if samples is None or not samples.has_truth or len(samples) < MIN_LABELLED:
        return
    import numpy as np

    scores = float_out[0].reshape(len(samples), -1)
    classes = scores.shape[1]
    if classes < 2:
        return
    accuracy = float(np.mean(scores.argmax(1) == np.array(samples.truth)))
    chance = 1 / classes
    if accuracy < chance + NEAR_CHANCE * (1 - chance):
        raise EdgennError(
            f"the float model gets {100 * accuracy:.0f} % of {len(samples)} labelled samples right (chance "
            f"{100 * chance:.0f} %): likely the input normalisation (mean {_short(options.mean)}, std "
            f"{_short(options.std)} from {source}; pass --mean/--std as in training) or the label order (folder "
            "names vs --labels); no file written; --force converts anyway")


def _short(values):
    return ",".join(f"{v:g}" for v in values)


def _normalization(options):
    mean, std = list(options.mean), list(options.std)
    return {"mean": mean[0] if len(mean) == 1 else mean, "std": std[0] if len(std) == 1 else std}


def _samples(loaded, options):
    """(calibration Samples or None, evaluation Samples or None)."""
    from edgenn.converters import data
    from edgenn.converters.quantize import CALIBRATED

    def read(source, limit, what):
        return data.load(source, loaded.input_shapes[0], _normalization(options), limit, options.resize,
                         options.color, what)

    calibrated = options.quantize in CALIBRATED
    if not options.calibration:
        return None, (read(options.eval, options.num_eval, "--eval") if options.eval else None)
    if options.eval:
        calibration = read(options.calibration, options.num_calibration, "--calibration") if calibrated else None
        return calibration, read(options.eval, options.num_eval, "--eval")
    if not calibrated:
        return None, read(options.calibration, options.num_eval, "--calibration")
    everything = read(options.calibration, options.num_calibration + options.num_calibration // 4, "--calibration")
    held = [i for i in range(len(everything)) if i % 5 == 4]
    kept = [i for i in range(len(everything)) if i % 5 != 4]
    return everything.take(kept), (everything.take(held) if held else None)


def _labels(loaded, task, options, samples, evaluation_set, warnings):
    """The model's labels; remaps the evaluation set's folder-name classes to their order."""
    classes = loaded.output_shapes[0][-1] - (5 if task == "detect" else 0)
    if options.labels:
        labels = load_labels_file(options.labels)
    elif samples is not None and samples.label_names:
        labels = list(samples.label_names)
    else:
        return [f"class{i}" for i in range(classes)] if task in IMAGE_TASKS else None
    if task in IMAGE_TASKS and len(labels) != classes:
        raise EdgennError(f"{len(labels)} labels ({', '.join(labels[:4])}…) but the model has {classes} classes; "
                          "fix --labels or the calibration folder names")
    evaluated = evaluation_set
    if evaluated is not None and evaluated.label_names and evaluated.label_names != labels and task == "classify":
        # Folder names index the sorted folders; remap them to the model's label order.
        names = evaluated.label_names
        if all(n in labels for n in names):
            evaluated.truth = [labels.index(names[t]) if t is not None else None for t in evaluated.truth]
        else:
            warnings.append("evaluation folder names do not match the labels: accuracy not computed")
            evaluated.truth = [None] * len(evaluated.truth)
    return labels


def _decoder(loaded, task, options):
    if task == "classify":
        return {"kind": "topk", "top_k": 3}
    if task == "detect":
        shape = loaded.output_shapes[0]
        decoder = {**DEFAULT_DECODER, "grid": shape[1], "num_classes": shape[3] - 5}
        if options.score_threshold is not None:
            decoder["score_threshold"] = options.score_threshold
        return decoder
    return None


def _runtime_support(tflite, options, flex):
    """What runs this bundle. The converter stamps the oldest TFLite runtime that has every op
    version the model uses (metadata 'min_runtime_version'); tflite-runtime's last release is 2.14."""
    from edgenn.converters.runtime_versions import min_runtime_version, runs_on

    needed = min_runtime_version(tflite)
    if flex:
        return {"ai-edge-litert": "no: Flex ops", "tflite-runtime 2.14": "no: Flex ops",
                "edgetpu": "no", "min_runtime_version": needed or "unknown"}
    support = {"ai-edge-litert": "yes", "min_runtime_version": needed or "unknown"}
    support["tflite-runtime 2.14"] = ("yes" if runs_on(needed, "2.14.0")
                                      else f"no: needs TFLite >= {needed}; use ai-edge-litert")
    if options.quantize == "int16x8":
        support["note"] = "int16x8 runs on reference kernels: 30-60x slower than int8"
    support["edgetpu"] = "compile with edgetpu_compiler" if options.target == "edgetpu" else "no (not --target edgetpu)"
    return support


def _sha256(path):
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _manifest(model, loaded, task, labels, options, tflite, calibration, evaluation, seconds):
    import keras
    import tensorflow as tf

    from edgenn.manifest import new_manifest
    from edgenn.modelfile import io_tensors, read_contents

    inputs, _ = io_tensors(tflite)
    specs = []
    for tensor in inputs:
        spec = {"name": tensor["name"], "shape": tensor["shape"], "dtype": tensor["dtype"],
                "quantization": tensor["quantization"] if tensor["quantization"]["scale"] else None}
        spec.update({"layout": "NHWC" if len(tensor["shape"]) == 4 else "NHW", "color": options.color,
                     "resize": options.resize, "normalization": _normalization(options)})
        specs.append(spec)
    quantization = {"mode": options.quantize, "io": options.io, "convert_seconds": round(seconds, 1)}
    if calibration is not None and options.quantize in ("int8", "int16x8"):
        quantization.update({"calibration_samples": len(calibration), "calibration_source": str(options.calibration)})
    fields = {
        "version": options.version,
        "quantization": quantization,
        "target": options.target,
        "provenance": {"source": Path(model).name, "source_sha256": _sha256(model),
                       "tensorflow": tf.__version__, "keras": keras.__version__, "edgenn": __version__,
                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "runtime_support": _runtime_support(tflite, options, read_contents(tflite).flex_ops),
    }
    if labels is not None:
        fields["labels"] = labels
    decoder = _decoder(loaded, task, options)
    if decoder:
        fields["decoder"] = decoder
    if evaluation:
        fields["evaluation"] = evaluation
    name = options.name or Path(model).stem.replace(" ", "_")
    return new_manifest(name, task, specs, **fields)
