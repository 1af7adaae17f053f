"""Export a run's time measurements in pytest-benchmark's `--benchmark-json` format, so
`pytest-benchmark compare` and other tools that read it can use SwapLab runs.

One benchmark per (test, device, metric, variant) with a unit of ms; samples are
converted to seconds as pytest-benchmark stores them (one round per frame/run).
"""

from __future__ import annotations

import platform
from pathlib import Path

from harness.files import atomic_write_json


def _stats(samples_s: list[float]) -> dict:
    from pytest_benchmark.stats import Stats  # lazy: pytest-benchmark is heavy and only wanted here
    s = Stats()
    for v in samples_s:
        s.update(v)
    out = s.as_dict()
    out["data"] = list(samples_s)
    out["iterations"] = 1
    return out


def to_benchmark_json(record: dict) -> dict:
    try:
        from pytest_benchmark import __version__ as pb_version  # lazy: see _stats
    except ImportError:  # pragma: no cover - pytest-benchmark is a dependency
        pb_version = "5.1.0"
    env = record.get("environment", {})
    host = env.get("host", {})
    git = env.get("git", {})
    machine_info = {
        "node": host.get("hostname", platform.node()),
        "processor": host.get("cpu", ""),
        "machine": host.get("machine", platform.machine()),
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_implementation_version": env.get("python", platform.python_version()),
        "python_version": env.get("python", platform.python_version()),
        "python_build": list(platform.python_build()),
        "release": host.get("kernel", platform.release()),
        "system": platform.system(),
        "cpu": {"brand_raw": host.get("cpu", ""), "count": host.get("cores")},
        "swaplab_devices": {k: {"name": v.get("name"), "profile": v.get("profile"),
                                "abi": v.get("abi")}
                            for k, v in record.get("devices", {}).items()},
    }
    commit_info = {
        "id": git.get("commit") or "unversioned",
        "time": None, "author_time": None,
        "dirty": bool(git.get("dirty")),
        "project": "swaplab",
        "branch": git.get("branch") or "(unknown)",
    }
    benchmarks = []
    for m in record.get("measurements", []):
        if m.get("unit") != "ms" or not m.get("samples"):
            continue
        extra = m.get("extra") or {}
        variant = extra.get("variant")
        test = m["test"]
        base = test.split("::")[-1].split("[")[0]
        param = m["device"] + (f"-{variant}" if variant else "")
        name = f"{base}:{m['metric']}[{param}]"
        benchmarks.append({
            "group": m["metric"],
            "name": name,
            "fullname": f"{test}:{m['metric']}" + (f"[{variant}]" if variant else ""),
            "params": {"device": m["device"], "profile": m.get("profile"),
                       **({"variant": variant} if variant else {})},
            "param": param,
            "extra_info": {"unit": "ms", "direction": m.get("direction"),
                           "target": m.get("target"), "swaplab_summary_ms": m.get("summary")},
            "options": {"disable_gc": False, "timer": "swap_runner telemetry", "min_rounds": 1,
                        "max_time": 0, "min_time": 0, "warmup": False},
            "stats": _stats([v / 1000.0 for v in m["samples"]]),
        })
    started = record.get("started") or ""
    return {"machine_info": machine_info, "commit_info": commit_info, "benchmarks": benchmarks,
            "datetime": started.replace("Z", "+00:00"), "version": pb_version}


def write_benchmark_json(record: dict, run_dir: Path) -> Path:
    path = Path(run_dir) / "benchmarks.json"
    atomic_write_json(path, to_benchmark_json(record))
    return path
