"""Report section "CPU vs GPU per stage": the measurements suites/test_gpu.py records with a
`backend` (cpu / vulkan), per device and mode: each stage's median on both backends and
their ratio, the host<->device transfer stage, GPU memory, and whether the GPU figures are
simulated (a CPU-backed Vulkan driver such as lavapipe, or a virtual device).

Pure formatting of the record; every text taken from it is HTML-escaped.
"""

from __future__ import annotations

import html
from pathlib import Path

from harness.report.base import register_section
from harness.runner.telemetry import EXTRA_STAGES, STAGES

_ORDER = (*STAGES, *EXTRA_STAGES)


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f} ms"


def gpu_tables(record: dict) -> list[dict]:
    """[{"device", "mode", "rows": [(stage, cpu_p50, gpu_p50, ratio)], "simulated",
    "vulkan_device", "gpu_memory_mb"}] from the record's backend-tagged measurements."""
    groups: dict[tuple[str, str], dict] = {}
    for m in record.get("measurements", []):
        extra = m.get("extra") or {}
        backend, mode = extra.get("backend"), extra.get("mode")
        key = (str(m.get("device", "")), str(mode or ""))
        if m.get("metric") == "gpu_memory_mb" and mode:
            groups.setdefault(key, {"stages": {}})["gpu_memory_mb"] = (m.get("summary") or {}).get("p50")
            continue
        if backend not in ("cpu", "vulkan") or not extra.get("stage"):
            continue
        g = groups.setdefault(key, {"stages": {}})
        g["stages"].setdefault(extra["stage"], {})[backend] = (m.get("summary") or {}).get("p50")
        if backend == "vulkan":
            g["simulated"] = bool(extra.get("simulated"))
            g["vulkan_device"] = extra.get("vulkan_device")
    out = []
    for (device, mode), g in sorted(groups.items()):
        if not g["stages"]:
            continue
        rows = []
        for stage in sorted(g["stages"], key=lambda s: _ORDER.index(s) if s in _ORDER else 99):
            cpu, gpu = g["stages"][stage].get("cpu"), g["stages"][stage].get("vulkan")
            ratio = gpu / cpu if cpu and gpu is not None and cpu > 0 else None
            rows.append((stage, cpu, gpu, ratio))
        out.append({"device": device, "mode": mode, "rows": rows,
                    "simulated": g.get("simulated", False), "vulkan_device": g.get("vulkan_device"),
                    "gpu_memory_mb": g.get("gpu_memory_mb")})
    return out


def report_section(record: dict, run_dir: Path) -> tuple[str, str] | None:
    tables = gpu_tables(record)
    if not tables:
        return None
    e = html.escape
    parts = [("<p>Median per stage over interleaved runs of the same frames on both backends "
              "(suites/test_gpu.py). <code>transfer</code> = host&lt;-&gt;device copies of the "
              "nets on Vulkan; on the CPU it is 0.</p>")]
    for t in tables:
        note = " <strong>simulated</strong> (Vulkan on a CPU: not a phone GPU's speed)" if t["simulated"] else ""
        mem = f", GPU memory {t['gpu_memory_mb']:.1f} MB" if t["gpu_memory_mb"] is not None else ""
        parts.append(f"<h3>{e(t['device'])} · mode {e(t['mode'])} · GPU "
                     f"{e(str(t['vulkan_device'] or '?'))}{mem}{note}</h3>")
        parts.append("<table><tr><th>stage</th><th>CPU p50</th><th>GPU p50</th><th>GPU / CPU</th></tr>")
        for stage, cpu, gpu, ratio in t["rows"]:
            r = "–" if ratio is None else f"{ratio:.2f}x"
            parts.append(f"<tr><td>{e(stage)}</td><td>{_ms(cpu)}</td><td>{_ms(gpu)}</td><td>{r}</td></tr>")
        parts.append("</table>")
    return "CPU vs GPU per stage", "\n".join(parts)


def register() -> None:
    register_section(report_section)
