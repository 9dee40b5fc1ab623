"""Per-layer quantization error (TFLite's QuantizationDebugger) as a CSV table and a PNG bar chart.

Imports TensorFlow: call only inside the conversion child process (see pipeline.py).
"""

import csv
import io
from pathlib import Path

from edgenn.bundle import write_atomic


def write(converter, representative, prefix):
    """Run the debugger on a calibrated converter; write PREFIX.csv and PREFIX.png; returns the paths."""
    import tensorflow as tf

    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative)
    debugger.run()
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    for row in rows:  # RMSE in units of the quantization step: ~0.3 is rounding noise, >1 is a problem
        scale = float(row.get("scale") or 0)
        mse = float(row.get("mean_squared_error") or 0)
        row["rmse_over_scale"] = f"{(mse ** 0.5) / scale:.4f}" if scale else ""
    prefix = Path(prefix)
    csv_path, png_path = prefix.with_suffix(".csv"), prefix.with_suffix(".png")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["op_name"])
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(csv_path, out.getvalue().encode())
    write_atomic(png_path, _chart(rows))
    return str(csv_path), str(png_path)


def _chart(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{r['op_name']} {r['tensor_idx']}" for r in rows]
    values = [float(r["rmse_over_scale"] or 0) for r in rows]
    figure, axes = plt.subplots(figsize=(8, 0.25 * len(rows) + 1.5))
    axes.barh(range(len(rows)), values, color="tab:blue")
    axes.set_yticks(range(len(rows)), names, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("RMSE / quantization scale (per layer output)")
    axes.set_title("Per-layer quantization error")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
