"""`edgenn listen`: run a speech-command or audio-classification model on live audio."""

import json

import click

from edgenn.cli.outputs import check_event_files
from edgenn.errors import EdgennError


def _keyword_thresholds(ctx, param, value):
    from edgenn.devices.listen import check_thresholds

    return check_thresholds(value)


def _print_devices(devices, as_json):
    if as_json:
        click.echo(json.dumps(devices))
        return
    if not devices:
        click.echo("no audio input devices found (check ALSA/PulseAudio or plug in a microphone)")
    for d in devices:
        mark = "*" if d["default"] else " "
        click.echo(f"{mark} {d['index']:>3}  {d['name']}  ({d['hostapi']}, {d['channels']} ch, "
                   f"{d['default_rate']:.0f} Hz)")


def _print_summary(summary):
    echo = lambda text: click.echo(text, err=True)  # noqa: E731 - stdout may carry events
    labels = ", ".join(f"{label} {n}" for label, n in sorted(summary["labels"].items())) or "none"
    echo(f"audio     {summary['audio_seconds']:.1f} s from {summary['source']} in {summary['wall_seconds']:.1f} s; "
         f"stopped: {summary['stopped_by']}")
    echo(f"events    {summary['events']} ({labels}); {summary['mode']} mode")
    echo(f"overflows {summary['overflows']} ({summary['lost_seconds']:.2f} s of audio lost); "
         f"real-time factor {summary['real_time_factor']:.4f}")


@click.command()
@click.argument("model", required=False)
@click.option("--source", default="default", show_default=True, metavar="default|DEVICE|FILE.wav|-",
              help="Sound card (default, index or name), a WAV file, or '-' for raw s16le mono PCM on stdin.")
@click.option("--events", multiple=True, metavar="-|FILE|mqtt://HOST[:PORT]/TOPIC",
              help="Where to send JSON-line events (repeatable).")
@click.option("--preview", metavar="HOST:PORT", help="Serve a live web page of the events (default host 127.0.0.1).")
@click.option("--preview-token", envvar="EDGENN_PREVIEW_TOKEN", metavar="TOKEN",
              help="Token the preview requires (?token=...); needed to bind other than localhost.")
@click.option("--mode", type=click.Choice(["window", "streaming"]),
              help="window: the window model every hop; streaming: the step model every frame "
                   "(default: streaming for a --streaming bundle, else window).")
@click.option("--threshold", type=click.FloatRange(0, 1),
              help="Score a label must reach (all labels; phrase models: each word's peak score, default none).")
@click.option("--keyword-threshold", "thresholds", multiple=True, metavar="LABEL=X", callback=_keyword_thresholds,
              help="Threshold of one label (repeatable, 0-1), e.g. --keyword-threshold go=0.9.")
@click.option("--hop-ms", type=click.FloatRange(min=1), help="Window mode: time between model runs.")
@click.option("--smoothing-ms", type=click.FloatRange(min=0), help="Moving average of the scores.")
@click.option("--refractory-ms", type=click.FloatRange(min=0), help="Quiet time after an event.")
@click.option("--states", "copies", type=click.IntRange(1, 8), default=4, show_default=True,
              help="Streaming mode: staggered states, each reset once per window length.")
@click.option("--realtime", is_flag=True, help="Play a WAV file at real-time pace (default: as fast as possible).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False), help="Labels file, one per line.")
@click.option("--frontend", metavar="mlcommons_kws|raw|FILE.json|FILE.tflite",
              help="Front-end of a model without a manifest: a preset, raw samples, front-end parameters, or a "
                   "front-end model fed 20 ms hops of 16 kHz audio, e.g. TFLite Micro's "
                   "audio_preprocessor_int8.tflite (default: raw for a waveform input).")
@click.option("--task", type=click.Choice(["keywords", "audio_classify", "phrases"]), help="Override the model's task.")
@click.option("--grammar", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Phrase models: the allowed phrases, one a line; each heard phrase becomes the likeliest of them, "
                   "or none (matched: false); words that only begin an allowed phrase wait up to 1.2 s for the next.")
@click.option("--pause-ms", type=click.FloatRange(min=100), help="Phrase models: quiet that ends a phrase "
              "(default 520).")
@click.option("--input-rate", type=click.IntRange(1000), help="Sample rate of the PCM on stdin (default: the model's).")
@click.option("--device-rate", type=click.IntRange(1000), help="Record at this rate (default: the model's, "
              "else 48/44.1 kHz, resampled).")
@click.option("--runtime", type=click.Choice(["litert", "tflite_runtime", "tensorflow"]),
              help="Force a runtime (default: the first installed).")
@click.option("--threads", type=click.IntRange(1), help="Interpreter threads.")
@click.option("--list-devices", is_flag=True, help="List the audio input devices and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or device list) as JSON on stdout.")
def listen(model, list_devices, as_json, **options):
    """Run MODEL (a .tflite bundle or an installed model's name) on live audio and report keywords, sounds or
    phrases.

    Ctrl-C, SIGTERM, --duration or the end of a file end the run with a summary.

    \b
    Examples:
      edgenn listen speech_commands.tflite --events -
      edgenn listen speech_commands.tflite --source clip.wav --mode window --threshold 0.8
      arecord -f S16_LE -r 16000 -c 1 | edgenn listen speech_commands.tflite --source -
      edgenn listen kws_ref_model.tflite --frontend mlcommons_kws --labels kws_12_labels.txt
      edgenn listen micro_speech_quantized.tflite --frontend audio_preprocessor_int8.tflite --labels labels.txt
      edgenn listen yamnet.tflite --events mqtt://broker/edgenn/audio
      edgenn listen speech_phrases_int8.tflite --grammar phrases.txt --events -
      edgenn listen --list-devices
    """
    from edgenn.devices.audio_sources import list_input_devices
    from edgenn.devices.listen import run_listen

    if list_devices:
        _print_devices(list_input_devices(), as_json)
        return
    if not model:
        raise click.UsageError("missing MODEL (or give --list-devices)", ctx=click.get_current_context())
    check_event_files(options["events"])
    options["events"] = list(options["events"]) or None
    summary = run_listen(model, **options)
    if as_json:
        click.echo(json.dumps(summary))
    _print_summary(summary)
    if summary["error"]:
        raise EdgennError(summary["error"])
