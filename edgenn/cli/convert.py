"""`edgenn convert`: quantize a Keras model into a checked, evaluated .tflite bundle."""

import click

from edgenn.cli.outputs import check_writable


def _numbers(text):
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number or comma-separated numbers") from None


def _size(text):
    try:
        height, width = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not HxW (for example 96x96)") from None
    if height < 1 or width < 1:  # refused here: TensorFlow would fail later with its own multi-line text
        raise click.BadParameter(f"{text!r}: height and width must be 1 or more (for example 96x96)")
    return height, width


@click.command()
@click.argument("model", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="The bundle to write (.tflite).")
@click.option("--task", type=click.Choice(["classify", "detect", "keywords", "audio_classify", "phrases"]),
              help="What the model does (default: guessed from its outputs).")
@click.option("--quantize", default="int8", show_default=True,
              type=click.Choice(["float32", "dynamic", "float16", "int8", "int16x8"]))
@click.option("--io", default="float", show_default=True, type=click.Choice(["float", "int8", "uint8"]),
              help="Input/output type of an int8 model.")
@click.option("--calibration", metavar="DATA",
              help="Folder of images (subfolders = labels), .npz, or module:function generator.")
@click.option("--eval", "eval_data", metavar="DATA",
              help="Evaluation data, same kinds (default: every 5th calibration sample, held back).")
@click.option("--labels", type=click.Path(), help="Labels file, one per line (default: calibration folder names).")
@click.option("--streaming", is_flag=True, help="Audio models: streaming (stateful) conversion.")
@click.option("--frames", type=click.IntRange(1), help="RNN models with free time length: frames per window.")
@click.option("--frontend", help="Audio models: mlcommons_kws or a .json of front-end parameters "
                                 "(default: MODEL.json beside the model).")
@click.option("--target", default="cpu", show_default=True, type=click.Choice(["cpu", "edgetpu"]),
              help="edgetpu: full int8, uint8 IO, compatibility report, edgetpu_compiler when present.")
@click.option("--max-drop", type=float, metavar="PP",
              help="Fail (no file) when accuracy / mAP drops more than PP percentage points.")
@click.option("--allow-flex", is_flag=True, help="Allow Flex (TensorFlow) ops; no device runtime runs them.")
@click.option("--num-calibration", default=200, show_default=True, type=click.IntRange(1))
@click.option("--num-eval", default=500, show_default=True, type=click.IntRange(1))
@click.option("--debug-layers", metavar="PREFIX", help="Write per-layer quantization error to PREFIX.csv/.png.")
@click.option("--input-size", callback=lambda c, p, v: _size(v) if v else None, metavar="HxW",
              help="Fix the picture size of a model with free input size.")
@click.option("--mean", callback=lambda c, p, v: _numbers(v) if v else None,
              help="Normalisation: input = (pixel - mean) / std; one value or one per channel "
                   "(default: read from the model's Rescaling/Normalization layers, else 0).")
@click.option("--std", callback=lambda c, p, v: _numbers(v) if v else None,
              help="See --mean (default: from the model, else 255).")
@click.option("--resize", default="stretch", show_default=True, type=click.Choice(["stretch", "letterbox", "crop"]))
@click.option("--color", type=click.Choice(["rgb", "bgr"]), help="Channel order the model takes (default: "
              "from the model, else rgb).")
@click.option("--force", is_flag=True, help="Convert even when the float model scores near chance on the "
              "labelled data.")
@click.option("--score-threshold", type=float, help="Detectors: default score threshold stored in the bundle.")
@click.option("--name", help="Model name in the manifest (default: the file name).")
@click.option("--version", "model_version", default="1", show_default=True, help="Model version in the manifest.")
def convert(model, output, task, quantize, io, calibration, eval_data, labels, streaming, frames, frontend, target,
            max_drop,
            allow_flex, num_calibration, num_eval, debug_layers, input_size, mean, std, resize, color,
            force, score_threshold, name, model_version):
    """Convert MODEL (.keras, .h5 or SavedModel folder) into a .tflite bundle.

    \b
    Examples:
      edgenn convert shapes.keras -o shapes.tflite --calibration cal_images/ --max-drop 1
      edgenn convert shapes.keras -o shapes_f16.tflite --quantize float16
      edgenn convert shapes.keras -o shapes_tpu.tflite --calibration cal.npz --target edgetpu
      edgenn convert speech.keras -o speech.tflite --calibration wavs/ --eval test_wavs/ --streaming
    """
    from edgenn.converters.pipeline import Options, convert as run

    check_writable(output, "-o")
    options = Options(task=task, quantize=quantize, io=io, calibration=calibration, eval=eval_data, labels=labels,
                      name=name, version=model_version, target=target, max_drop=max_drop, allow_flex=allow_flex,
                      num_calibration=num_calibration, num_eval=num_eval, debug_layers=debug_layers,
                      input_size=input_size, mean=mean, std=std, resize=resize, color=color, force=force,
                      score_threshold=score_threshold, streaming=streaming, frames=frames, frontend=frontend)
    result = run(model, output, options)
    for line in result.edgetpu_report:
        click.echo(line)
    if result.evaluation_table:
        click.echo(f"{'':<18}{'float model':>14}{'converted':>14}")
        for metric, ref, converted in result.evaluation_table:
            click.echo(f"{metric:<18}{ref:>14}{converted:>14}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    quant = result.manifest["quantization"]
    click.echo(f"wrote {result.output} ({result.size_bytes / 1024:.1f} KB, {quant['mode']}, io {quant['io']}, "
               f"task {result.manifest['task']}) in {result.seconds:.1f} s")
    for path in result.extra_files:
        click.echo(f"wrote {path}")

