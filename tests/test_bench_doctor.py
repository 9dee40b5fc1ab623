"""`edgenn bench` (its JSON schema and plot) and `edgenn doctor` on this machine."""

import json

from conftest import run_cli

INT8 = "models/tflite_micro/trained_lstm_int8.tflite"
FLOAT = "models/tflite_micro/trained_lstm.tflite"
LATENCY_KEYS = {"mean", "min", "p50", "p90", "p99", "max"}


def check_schema(report):
    """The documented edgenn.bench/1 schema (edgenn/benchmark.py docstring, README)."""
    assert report["schema"] == "edgenn.bench/1"
    assert isinstance(report["time"], float)
    assert set(report["machine"]) == {"python", "platform", "cpus"}
    for entry in report["models"]:
        assert {"model", "sha256", "runtime", "runtime_version", "inputs", "quantization", "results"} <= set(entry)
        for row in entry["results"]:
            assert {"threads", "warmup", "runs", "latency_ms", "throughput_per_s", "peak_rss_mb",
                    "model_rss_mb"} == set(row)
            assert set(row["latency_ms"]) == LATENCY_KEYS
            lat = row["latency_ms"]
            assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
            assert row["throughput_per_s"] > 0 and row["peak_rss_mb"] > 0


def test_bench_json_schema_and_plot(fixtures_dir, tmp_path):
    plot = tmp_path / "latency.png"
    result = run_cli(["bench", fixtures_dir / INT8, "--compare", fixtures_dir / FLOAT, "--threads", "1,2",
                      "--runs", "20", "--warmup", "2", "--json", "--plot", plot])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    check_schema(report)
    assert [r["threads"] for r in report["models"][0]["results"]] == [1, 2]
    assert report["models"][0]["quantization"] == "integer inputs"
    assert set(report["comparison"]["speedup_p50"]) == {"1", "2"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_table_and_bad_usage(fixtures_dir):
    result = run_cli(["bench", fixtures_dir / FLOAT, "--runs", "5"])
    assert result.returncode == 0 and "p50 ms" in result.stdout
    assert run_cli(["bench", fixtures_dir / FLOAT, "--threads", "two"]).returncode == 2
    missing = run_cli(["bench", "nowhere.tflite"])
    assert missing.returncode == 1 and missing.stderr.startswith("edgenn: error: nowhere.tflite: no such file")


def test_doctor_reports_absent_hardware_with_fixes():
    result = run_cli(["doctor", "--json"])
    assert result.returncode == 0, result.stderr
    checks = {c["area"]: c for c in json.loads(result.stdout)}
    assert checks["runtime litert"]["ok"]
    for area in ("camera v4l2", "edge tpu device", "edge tpu runtime"):
        assert not checks[area]["ok"] and checks[area]["fix"], checks[area]
    text = run_cli(["doctor"]).stdout
    assert "no Coral Edge TPU found" in text and "fix:" in text
