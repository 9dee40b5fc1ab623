"""`edgenn demo`: convert the demo models and run them on sample input, scored against ground truth."""

import json
import sys

import click

from edgenn.demo_run import run_demo


@click.command()
@click.option("--out", default="edgenn-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the bundles, annotated video, events and report.")
@click.option("--calibration", type=click.Path(exists=True, file_okay=False),
              help="Calibration data (images/ and speech/), made by `python -m training.make_demo_samples "
                   "--calibration DIR`; default OUT/calibration.")
@click.option("--live", is_flag=True, help="Use the camera (15 s) and the default microphone (20 s) instead of samples.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo(out, calibration, live, as_json):
    """Convert the demo detector and speech model to int8, run them on a sample video and WAV,
    and compare what they find with the ground truth.

    \b
    Example:
      make demo                       # sets everything up, then runs this
      edgenn demo --calibration build/demo-calibration --out edgenn-demo
    """
    log = (lambda message: click.echo(message, err=True)) if as_json else click.echo
    result = run_demo(out, calibration, live, log)
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        camera, microphone = result["camera"], result["microphone"]
        click.echo("")
        click.echo(f"camera: {camera['summary']['frames']} frames, {camera['summary']['fps']:.1f} FPS; "
                   f"microphone heard: {', '.join(f'{t:.1f}s {w}' for t, w in microphone['events']) or 'nothing'}")
        if microphone.get("truth"):
            click.echo(f"            spoken: {', '.join(f'{t:.1f}s {w}' for t, w in microphone['truth'])}")
        if "clip_accuracy" in microphone:
            click.echo(f"speech model (int8): {100 * microphone['clip_accuracy']:.1f} % of {microphone['clips']} real "
                       "one-second clips of speakers it never heard (Speech Commands, CC BY 4.0)")
        for what, measured, bar, passed in result["verdicts"]:
            click.echo(f"{'pass' if passed else 'FAIL'}  {what}: {measured} (bar {bar})")
        click.echo(f"report: {result['report']}  ({result['seconds']:.0f} s)")
    sys.exit(0 if all(passed for *_, passed in result["verdicts"]) else 1)
