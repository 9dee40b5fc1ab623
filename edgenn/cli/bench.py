"""`edgenn bench`: latency percentiles, throughput and memory per thread count."""

import json

import click

from edgenn.benchmark import bench as run_bench
from edgenn.benchmark import plot_latencies
from edgenn.cli.outputs import check_writable


def _threads(ctx, param, value):
    try:
        counts = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give thread counts like 1 or 1,2,4") from None
    if any(c < 1 for c in counts):
        raise click.BadParameter("thread counts must be 1 or more")
    return counts


@click.command()
@click.argument("model", type=click.Path())
@click.option("--compare", type=click.Path(), help="A second model to compare (e.g. the float32 twin).")
@click.option("--threads", default="1", callback=_threads, show_default=True,
              help="Thread counts, comma-separated: one table row each.")
@click.option("--runs", default=100, show_default=True, type=click.IntRange(1), help="Timed invokes.")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(0), help="Untimed invokes first.")
@click.option("--runtime", type=click.Choice(["litert", "tflite_runtime", "tensorflow"]), help="Force a runtime.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (schema edgenn.bench/1).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a latency histogram PNG.")
def bench(model, compare, threads, runs, warmup, runtime, as_json, plot):
    """Measure MODEL's latency (p50/p90/p99), throughput and peak memory.

    \b
    Example:
      edgenn bench detector_int8.tflite --threads 1,2,4
      edgenn bench detector_int8.tflite --compare detector_float32.tflite --plot latency.png
    """
    if plot:
        check_writable(plot, "--plot")
    paths = [model] + ([compare] if compare else [])
    report, samples = run_bench(paths, threads, warmup, runs, runtime)
    if plot:
        plot_latencies(report, samples, plot)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for entry in report["models"]:
        click.echo(f"{entry['model']}  ({entry['runtime']} {entry['runtime_version']}, "
                   f"quantization {entry['quantization']})")
        click.echo(f"  {'threads':>7} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'per s':>9} {'peak RSS MB':>12}")
        for row in entry["results"]:
            lat = row["latency_ms"]
            click.echo(f"  {row['threads']:>7} {lat['p50']:>9.3f} {lat['p90']:>9.3f} {lat['p99']:>9.3f} "
                       f"{row['throughput_per_s']:>9.1f} {row['peak_rss_mb']:>12.1f}")
    if report["comparison"]:
        for count, ratio in report["comparison"]["speedup_p50"].items():
            click.echo(f"{count} thread(s): {model} runs {ratio:.2f}× as fast as {compare} (p50)")
    if plot:
        click.echo(f"plot written to {plot}")
