"""`edgenn camera`: run a CNN on frames from a camera, a stream, a video file or an image folder."""

import json

import click

from edgenn.cli.outputs import check_event_files, check_writable
from edgenn.devices.recorder import check_path as check_record_path, describe, formats_help
from edgenn.errors import EdgennError


def _size(ctx, param, value):
    if value is None:
        return None
    width, sep, height = value.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise click.BadParameter("expected WIDTHxHEIGHT, e.g. 640x480")
    return int(width), int(height)


def _record(ctx, param, value):
    if value is not None:
        check_record_path(value)
        check_writable(value, "--record")
    return value


def _print_summary(summary):
    echo = lambda text: click.echo(text, err=True)  # noqa: E731 - stdout may carry events
    echo(f"frames    {summary['frames']} ({summary['dropped']} dropped) in {summary['seconds']:.1f} s, "
         f"{summary['fps']:.1f} FPS; stopped: {summary['stopped_by']}")
    echo(f"latency   p50 {summary['latency_ms']['p50']:.1f} ms, p90 {summary['latency_ms']['p90']:.1f} ms "
         f"(invoke p50 {summary['invoke_ms']['p50']:.1f} ms); mean frame age {summary['frame_age_ms']['mean']:.1f} ms")
    setting = summary["threads"]
    echo(f"threads   {setting['threads']}{' (the model alone)' if setting['serial'] else ''}: {setting['why']}")
    if summary.get("recorded"):
        recorded = summary["recorded"]
        echo(f"recorded  {recorded['frames']} frames to {recorded['file']} ({describe(recorded['file'])})")


@click.command()
@click.argument("model")
@click.option("--source", help="Camera index, /dev/videoN, picamera2[:N], video file, rtsp:// or http:// URL, "
              "folder or glob (default: the CSI camera on a Raspberry Pi with Picamera2, else camera 0).")
@click.option("--display", is_flag=True, help="Show the annotated frames in a window (needs a screen).")
@click.option("--record", metavar="FILE", callback=_record,
              help=f"Write the annotated video; the extension sets the format: {formats_help()}.")
@click.option("--preview", metavar="HOST:PORT", help="Serve a live web page (default host 127.0.0.1).")
@click.option("--preview-token", envvar="EDGENN_PREVIEW_TOKEN", metavar="TOKEN",
              help="Token the preview requires (?token=...); needed to bind other than localhost.")
@click.option("--events", multiple=True, metavar="-|FILE|mqtt://HOST[:PORT]/TOPIC",
              help="Where to send JSON-line events (repeatable).")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False), help="Labels file, one per line.")
@click.option("--decoder", help="Output decoder: topk, ssd_postprocess, yolov8, edgenn_grid (default: manifest/guess).")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Minimum score of a result (scores are 0-1).")
@click.option("--max-detections", type=click.IntRange(1), help="Most detections per frame.")
@click.option("--top-k", type=click.IntRange(1), help="Classes reported per frame (classification).")
@click.option("--size", callback=_size, metavar="WxH", help="Requested capture size (files: resized to it).")
@click.option("--fps", type=click.FloatRange(min=0.1), help="Requested camera frame rate (files: playback rate).")
@click.option("--realtime", is_flag=True, help="Play a file at its frame rate, dropping frames like a live camera.")
@click.option("--max-frames", type=click.IntRange(1), help="Stop after this many frames.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@click.option("--reconnects", type=click.IntRange(0), default=5, show_default=True,
              help="Reopen attempts for a live source that drops.")
@click.option("--runtime", type=click.Choice(["litert", "tflite_runtime", "tensorflow"]),
              help="Force a runtime (default: the first installed).")
@click.option("--threads", type=click.IntRange(1), help="Interpreter threads (default: every core with the "
              "model running alone, or all but one beside capture: whichever is faster here, measured on the "
              "first frames).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def camera(model, as_json, **options):
    """Run MODEL (a .tflite bundle or an installed model's name) on camera frames.

    Ctrl-C, SIGTERM, --max-frames or --duration end the run with a summary.

    \b
    Examples:
      edgenn camera shapes.tflite --source 0 --preview 127.0.0.1:8080
      edgenn camera detect.tflite --source clip.mp4 --record out.mp4 --events -
      edgenn camera yolov8n_int8.tflite --source rtsp://cam/stream --threshold 0.25 \\
          --events mqtt://broker/edgenn/camera
    """
    from edgenn.devices.camera import run_camera  # OpenCV loads only when the command runs

    check_event_files(options["events"])
    options["events"] = list(options["events"]) or None
    summary = run_camera(model, **options)
    if as_json:
        click.echo(json.dumps(summary))
    _print_summary(summary)
    if summary["error"]:
        raise EdgennError(summary["error"])
