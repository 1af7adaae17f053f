"""CPU vs GPU (ncnn's Vulkan backend) per stage, for each mode, on the same frames.

Per mode: ROUNDS interleaved pairs of runs (cpu, vulkan / vulkan, cpu alternating, so a
neighbour's load or a thermal drift hits both backends alike), each over the profile's
frames. Recorded per backend and stage: `latency_<stage>_ms` (variant "mode=M backend=B"),
`latency_transfer_ms` (host<->device copies on Vulkan: upload + download, apart from the
nets' compute), `gpu_vs_cpu_total_ratio` (per round: GPU median total / CPU median total)
and `gpu_memory_mb` (device-local heap usage the driver reports, VK_EXT_memory_budget).

The profile's targets apply only to the backend its `[run] backend` names. GPU figures are
`simulated` when the Vulkan device is a CPU (Mesa's lavapipe) or the device is one of
SwapLab's virtual devices. Skips, with the reason, where the runner has no Vulkan: a build
without it (the static phone builds) or no Vulkan driver on the device.
"""

import statistics

import pytest

from harness.runner.invoke import LAB_MODES as MODES
from harness.runner.telemetry import STAGES

ROUNDS = 3
BACKENDS = ("cpu", "vulkan")


def _vulkan_or_skip(swap, device, mode: str) -> dict:
    probe = swap(f"gpu-probe-{mode}", mode=mode, backend="vulkan", warmup=0, frames=1)
    vk = probe.summary.get("vulkan")
    if not isinstance(vk, dict):
        pytest.skip(f"{device.serial}: swap_runner reports no Vulkan status (telemetry schema 1)")
    if not vk.get("available"):
        pytest.skip(f"{device.serial}: no GPU path: {vk.get('reason', 'Vulkan unavailable')}")
    return vk


def _gpu_memory_mb(summary: dict) -> float | None:
    heaps = (summary.get("vulkan") or {}).get("heaps") or []
    used = [h["usage_mb"] for h in heaps if h.get("device_local") and h.get("usage_mb") is not None]
    return sum(used) if used else None


@pytest.mark.parametrize("mode", [m for m in MODES if m != "auto"])
def test_gpu_vs_cpu(mode, swap, device, profile, recorder):
    vk = _vulkan_or_skip(swap, device, mode)
    simulated = bool(getattr(device, "simulated", False)) or vk.get("device_type") == "cpu"
    stage_ms: dict[str, dict[str, list[float]]] = {b: {} for b in BACKENDS}
    totals: dict[str, list[float]] = {b: [] for b in BACKENDS}
    gpu_mem: list[float] = []
    for rnd in range(ROUNDS):
        for backend in (BACKENDS if rnd % 2 == 0 else BACKENDS[::-1]):
            run = swap(f"gpu-{mode}-{backend}-r{rnd}", mode=mode, backend=backend)
            used = set(run.summary.get("backend", {}).values())
            assert used == {backend}, (
                f"device {device.serial!r}: mode {mode}: asked every net on {backend}, "
                f"the runner used {sorted(used)} ({run.telemetry.backends})")
            for stage, values in run.stage_ms.items():
                stage_ms[backend].setdefault(stage, []).extend(values)
            totals[backend].append(statistics.median(run.stage_ms["total"]))
            if backend == "vulkan" and (mb := _gpu_memory_mb(run.summary)) is not None:
                gpu_mem.append(mb)

    target_backend = profile.run.backend
    for backend in BACKENDS:
        facts = {"variant": f"mode={mode} backend={backend}", "backend": backend, "mode": mode,
                 "rounds": ROUNDS, "simulated": simulated and backend == "vulkan"}
        if backend == "vulkan":
            facts["vulkan_device"] = vk.get("device")
        for stage in (*STAGES, "transfer"):
            values = stage_ms[backend].get(stage)
            if values is None:
                continue
            recorder.measure(f"latency_{stage}_ms", values, unit="ms", direction="lower",
                             check_target=backend == target_backend, stage=stage, **facts)
    ratios = [g / c for g, c in zip(totals["vulkan"], totals["cpu"]) if c > 0]
    recorder.measure("gpu_vs_cpu_total_ratio", ratios, unit="ratio", direction="lower",
                     check_target=False, variant=f"mode={mode}", mode=mode, simulated=simulated,
                     vulkan_device=vk.get("device"))
    if gpu_mem:
        recorder.measure("gpu_memory_mb", gpu_mem, unit="mb", direction="lower",
                         check_target=False, variant=f"mode={mode} backend=vulkan", mode=mode,
                         simulated=simulated, vulkan_device=vk.get("device"))
    recorder.assert_targets()
