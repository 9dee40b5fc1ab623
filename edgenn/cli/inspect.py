"""`edgenn inspect`: tensors, ops, manifest and labels of one or more models."""

import json
import sys

import click

from edgenn.errors import EdgennError
from edgenn.inspection import inspect_model, notes
from edgenn.tflite_metadata import summary


def _quant(tensor):
    q = tensor.get("quantization") or {}
    return f"  q(scale={q['scale']:.6g}, zero_point={q['zero_point']})" if q.get("scale") else ""


def _print_report(report):
    echo = click.echo
    echo(f"model     {report['file']}  ({report['size_bytes'] / 1e6:.2f} MB, sha256 {report['sha256'][:16]}…)")
    runtime = report["runtime"]
    echo(f"runtime   {runtime['name']} {runtime['version']}" if runtime["loaded"] else "runtime   not loadable here")
    for kind in ("inputs", "outputs"):
        for i, tensor in enumerate(report[kind]):
            label = kind if i == 0 else ""
            echo(f"{label:<9} {tensor['name']}  {tensor['shape']} {tensor['dtype']}{_quant(tensor)}")
    total = sum(op["count"] for op in report["ops"])
    echo(f"ops       {total} in {report['subgraphs']} subgraph(s):")
    for op in sorted(report["ops"], key=lambda op: -op["count"]):
        note = f"  — {op['note']}" if op["note"] else ""
        echo(f"          {op['name']} v{op['version']} ×{op['count']}{note}")
    manifest = report["manifest"]
    if manifest:
        quant = manifest.get("quantization", {}).get("mode", "?")
        echo(f"manifest  {manifest['name']} {manifest['version']}: task {manifest['task']}, "
             f"quantization {quant}, target {manifest.get('target', 'cpu')}")
        decoder = manifest.get("decoder") or {}
        if decoder.get("kind") == "phrases":
            echo(f"          phrases of {', '.join(decoder['vocabulary'])}; CTC blank = token "
                 f"{decoder['blank_index']}, filler {', '.join(decoder['filler']) or 'none'}")
        for key, value in (manifest.get("evaluation") or {}).items():
            echo(f"          evaluation {key}: {value}")
        for key, value in (manifest.get("runtime_support") or {}).items():
            echo(f"          runtime {key}: {value}")
    else:
        echo("manifest  none (not an edgenn bundle; runners take the rest from options)")
    standard = report["tflite_metadata"]
    if standard is None:
        echo("metadata  no standard TFLite metadata (TFLite Support and MediaPipe find no labels)")
    else:
        echo(f"metadata  {standard['error'] if 'error' in standard else 'TFLite standard: ' + summary(standard)}")
    labels = report["labels"]
    if labels:
        echo(f"labels    {labels['count']}: {' | '.join(labels['first'])} | …")
    for note in notes(report):
        echo(f"note      {note}")


@click.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per model.")
@click.option("--runtime", type=click.Choice(["litert", "tflite_runtime", "tensorflow"]),
              help="Force a runtime (default: the first installed).")
def inspect(models, as_json, runtime):
    """Show what MODELS contain: runtime, inputs and outputs, ops, manifest, standard metadata, labels.

    \b
    Example:
      edgenn inspect mobilenet_v2_1.0_224_quant.tflite
      edgenn inspect detector.tflite --json
    """
    failed = 0
    for i, path in enumerate(models):
        try:
            report = inspect_model(path, runtime)
        except EdgennError as exc:
            failed += 1
            click.echo(f"edgenn: error: {exc}", err=True)
            continue
        if as_json:
            click.echo(json.dumps(report))
        else:
            if i:
                click.echo()
            _print_report(report)
    sys.exit(1 if failed else 0)
