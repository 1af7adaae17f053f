"""The report's "CPU vs GPU per stage" section (harness/report/backends.py) from the
measurements suites/test_gpu.py records."""

from __future__ import annotations

from pathlib import Path

from harness.report.backends import gpu_tables, report_section


def _m(device, metric, p50, **extra):
    return {"device": device, "metric": metric, "summary": {"p50": p50, "n": 3}, "extra": extra}


def _record(device="dev<1>", simulated=True):
    ms = []
    for stage, cpu, gpu in (("total", 20.0, 30.0), ("detect", 2.0, 4.0), ("transfer", 0.0, 1.5)):
        ms.append(_m(device, f"latency_{stage}_ms", cpu, backend="cpu", mode="small", stage=stage))
        ms.append(_m(device, f"latency_{stage}_ms", gpu, backend="vulkan", mode="small", stage=stage,
                     simulated=simulated, vulkan_device="llvmpipe <x>"))
    ms.append(_m(device, "gpu_memory_mb", 12.5, mode="small", variant="mode=small backend=vulkan"))
    ms.append(_m(device, "latency_total_ms", 19.0, variant="mode=small"))  # no backend: not here
    return {"measurements": ms}


def test_tables_pair_backends_per_stage_in_pipeline_order():
    (t,) = gpu_tables(_record())
    assert t["device"] == "dev<1>" and t["mode"] == "small" and t["simulated"] is True
    assert [r[0] for r in t["rows"]] == ["detect", "total", "transfer"]
    assert t["rows"][0] == ("detect", 2.0, 4.0, 2.0)
    assert t["rows"][2][3] is None  # CPU transfer is 0: no ratio
    assert t["gpu_memory_mb"] == 12.5


def test_section_escapes_and_says_simulated():
    title, body = report_section(_record(), Path("."))
    assert title == "CPU vs GPU per stage"
    assert "dev&lt;1&gt;" in body and "llvmpipe &lt;x&gt;" in body and "<x>" not in body
    assert "simulated" in body and "2.00x" in body and "12.5 MB" in body
    _, real = report_section(_record(simulated=False), Path("."))
    assert "<strong>simulated</strong>" not in real


def test_no_section_without_gpu_runs():
    assert report_section({"measurements": [_m("d", "latency_total_ms", 1.0, variant="x")]}, Path(".")) is None
