"""`edgenn demo`: run the shipped demo bundles on sample input, scored against ground truth."""

import json
import sys

import click

from edgenn.demo_run import run_demo


@click.command()
@click.option("--out", default="edgenn-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the annotated video, events, report (and the bundles with --convert).")
@click.option("--live", is_flag=True, help="Use the camera (15 s) and the default microphone (20 s) instead of samples.")
@click.option("--convert", is_flag=True,
              help="First rebuild the int8 bundles from the demo Keras models (needs TensorFlow and calibration data).")
@click.option("--calibration", type=click.Path(exists=True, file_okay=False),
              help="Calibration data for --convert (images/ and speech/; implies --convert), made in a checkout by "
                   "`python -m training.make_demo_samples --calibration DIR`; default OUT/calibration.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo(out, live, convert, calibration, as_json):
    """Run the shipped int8 demo detector, speech-command and phrase models on a sample video and WAVs (no
    TensorFlow needed), and compare what they find with the ground truth.

    \b
    Example:
      edgenn demo                     # on a Pi: writes edgenn-demo/report.html
      edgenn demo --live              # the camera and the microphone instead
      make demo                       # in a checkout: converts the Keras models first, then runs
      edgenn demo --calibration build/demo-calibration --out edgenn-demo
    """
    log = (lambda message: click.echo(message, err=True)) if as_json else click.echo
    result = run_demo(out, calibration, live, convert, log)
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        camera, microphone = result["camera"], result["microphone"]
        click.echo("")
        click.echo(f"camera: {camera['summary']['frames']} frames, {camera['summary']['fps']:.1f} FPS; "
                   f"microphone heard: {', '.join(f'{t:.1f}s {w}' for t, w in microphone['events']) or 'nothing'}")
        if microphone.get("truth"):
            click.echo(f"            spoken: {', '.join(f'{t:.1f}s {w}' for t, w in microphone['truth'])}")
        click.echo(f"speech model (int8): {100 * microphone['clip_accuracy']:.1f} % of {microphone['clips']} real "
                   "one-second clips of speakers it never heard (Speech Commands, CC BY 4.0)")
        phrases = result["phrases"]
        click.echo(f"phrases heard: {' | '.join(text for _, text in phrases['heard']) or 'nothing'}")
        if phrases.get("truth"):
            click.echo(f"       spoken: {' | '.join(text for _, text in phrases['truth'])}")
        for what, measured, bar, passed in result["verdicts"]:
            click.echo(f"{'pass' if passed else 'FAIL'}  {what}: {measured} (bar {bar})")
        click.echo(f"report: {result['report']}  ({result['seconds']:.0f} s)")
    sys.exit(0 if all(passed for *_, passed in result["verdicts"]) else 1)
