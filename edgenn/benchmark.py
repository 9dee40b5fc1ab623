"""Latency, throughput and memory of a model on this machine: the library behind `edgenn bench`.

Each measurement runs in a forked child so its memory figures are its own and a crash in the
interpreter cannot take the caller down. JSON schema "edgenn.bench/1" (stable; fields are only
ever added):

    {"schema": "edgenn.bench/1", "time": UNIX_SECONDS, "machine": {"python", "platform", "cpus"},
     "models": [{"model": PATH, "sha256": HEX, "runtime": NAME, "runtime_version": STR,
                 "inputs": [{"shape", "dtype"}], "quantization": MODE (manifest) | "integer inputs" | "float inputs",
                 "results": [{"threads": N, "warmup": N, "runs": N,
                              "latency_ms": {"mean", "min", "p50", "p90", "p99", "max"},
                              "throughput_per_s": FLOAT, "peak_rss_mb": FLOAT, "model_rss_mb": FLOAT}]}],
     "comparison": null | {"baseline": PATH, "other": PATH,
                           "speedup_p50": {THREADS: other p50 / baseline p50}}}
    speedup_p50 says how many times faster the first model (the baseline) runs than the other.
"""

import hashlib
import os
import platform
import sys
import time

import numpy as np

from edgenn.bundle import load_bytes, read_manifest
from edgenn.isolate import run_isolated
from edgenn.modelfile import read_contents

SCHEMA = "edgenn.bench/1"


def _rss_mb(field):
    """VmRSS (now) or VmHWM (peak) of this process in MB, from /proc (Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _random_input(tensor, rng):
    if np.issubdtype(tensor.dtype, np.integer):
        info = np.iinfo(tensor.dtype)
        return rng.integers(info.min, info.max, size=tensor.shape, endpoint=True).astype(tensor.dtype)
    return rng.standard_normal(tensor.shape).astype(tensor.dtype)


def _measure(data, source, threads, warmup, runs, runtime):
    from edgenn.runtime import open_model

    before = _rss_mb("VmRSS")
    model = open_model(data, runtime=runtime, threads=threads, probe=False)
    rng = np.random.default_rng(0)
    for position, tensor in enumerate(model.inputs):
        model.set_input(position, _random_input(tensor, rng))
    for _ in range(warmup):
        model.invoke()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        model.invoke()
        times[i] = time.perf_counter() - start
    peak = _rss_mb("VmHWM")
    ms = times * 1000
    result = {
        "threads": threads, "warmup": warmup, "runs": runs,
        "latency_ms": {"mean": float(ms.mean()), "min": float(ms.min()), "p50": float(np.percentile(ms, 50)),
                       "p90": float(np.percentile(ms, 90)), "p99": float(np.percentile(ms, 99)),
                       "max": float(ms.max())},
        "throughput_per_s": float(runs / times.sum()),
        "peak_rss_mb": round(peak, 1), "model_rss_mb": round(max(peak - before, 0.0), 1),
    }
    header = {"runtime": model.runtime, "runtime_version": model.runtime_version,
              "inputs": [{"shape": list(t.shape), "dtype": t.dtype.name} for t in model.inputs]}
    return header, result, ms.tolist()


def bench_model(path, threads=(1,), warmup=10, runs=100, runtime=None):
    """Benchmark one model at each thread count; returns (model entry, {threads: latencies_ms})."""
    data = load_bytes(path)
    read_contents(data, str(path))  # a damaged file is named here, not as "model" inside the child
    manifest = read_manifest(data, str(path)) or {}
    entry = {"model": str(path), "sha256": hashlib.sha256(data).hexdigest(),
             "quantization": manifest.get("quantization", {}).get("mode", "unknown"), "results": []}
    samples = {}
    for count in threads:
        header, result, latencies = run_isolated(_measure, data, str(path), count, warmup, runs, runtime,
                                                 what=f"benchmarking {path}", timeout=3600)
        entry.update(header)
        if entry["quantization"] == "unknown":  # no manifest: say what the input tensors show
            integer = any(np.issubdtype(np.dtype(t["dtype"]), np.integer) for t in header["inputs"])
            entry["quantization"] = "integer inputs" if integer else "float inputs"
        entry["results"].append(result)
        samples[count] = latencies
    return entry, samples


def bench(paths, threads=(1,), warmup=10, runs=100, runtime=None):
    """The full report for one model, or two (the second compared against the first)."""
    models, samples = [], []
    for path in paths:
        entry, latencies = bench_model(path, threads, warmup, runs, runtime)
        models.append(entry)
        samples.append(latencies)
    comparison = None
    if len(models) == 2:
        baseline, other = models
        comparison = {"baseline": baseline["model"], "other": other["model"], "speedup_p50": {
            str(a["threads"]): b["latency_ms"]["p50"] / a["latency_ms"]["p50"]
            for a, b in zip(baseline["results"], other["results"])}}
    report = {"schema": SCHEMA, "time": time.time(),
              "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                          "cpus": os.cpu_count()},
              "models": models, "comparison": comparison}
    return report, samples


def plot_latencies(report, samples, path):
    """Latency histogram per model and thread count, as a PNG (needs matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        from edgenn.errors import EdgennError
        raise EdgennError("--plot needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    every = np.concatenate([np.asarray(v) for latencies in samples for v in latencies.values()])
    # Log-spaced bins: a few slow outliers must not squash the distribution into one bar.
    bins = np.geomspace(max(every.min(), 1e-3), every.max() * 1.01, 60)
    for entry, latencies in zip(report["models"], samples):
        for count, values in latencies.items():
            name = os.path.basename(entry["model"])
            axis.hist(values, bins=bins, alpha=0.6, label=f"{name}, {count} thread(s)")
    axis.set_xscale("log")
    axis.set_xlabel("latency per invoke (ms, log scale)")
    axis.set_ylabel("runs")
    axis.set_title("edgenn bench")
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
