"""CPU vs GPU (ncnn's Vulkan backend) per stage, for each mode, on the same frames.

Per mode: ROUNDS interleaved pairs of runs (vulkan, cpu / cpu, vulkan alternating, so a
neighbour's load or a thermal drift hits both backends alike), each over the profile's
frames (on a simulated GPU, lavapipe: SIMULATED_ROUNDS x SIMULATED_FRAMES, a functional
comparison, since those figures are CPU figures). Recorded per backend and stage: `latency_<stage>_ms` (variant "mode=M backend=B"),
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
SIMULATED_ROUNDS, SIMULATED_FRAMES = 2, 5
BACKENDS = ("cpu", "vulkan")


def _vulkan_or_skip(run, device) -> dict:
    """The Vulkan status a run reports; skips with the runner's reason when it has none."""
    vk = run.summary.get("vulkan")
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
    settings = profile.run
    # round 0 starts on the GPU: that run says whether there is one (skip, with the reason)
    first = swap(f"gpu-{mode}-vulkan-r0", mode=mode, backend="vulkan",
                 frames=SIMULATED_FRAMES, warmup=1)
    vk = _vulkan_or_skip(first, device)
    simulated = bool(getattr(device, "simulated", False)) or vk.get("device_type") == "cpu"
    # A CPU-backed Vulkan (lavapipe) measures nothing of a phone GPU: a short functional
    # comparison there (CI time); the profile's frames and ROUNDS on a real GPU.
    rounds = SIMULATED_ROUNDS if simulated else ROUNDS
    frames = SIMULATED_FRAMES if simulated else settings.measured_frames
    warmup = 1 if simulated else settings.warmup_frames
    stage_ms: dict[str, dict[str, list[float]]] = {b: {} for b in BACKENDS}
    totals: dict[str, list[float]] = {b: [] for b in BACKENDS}
    gpu_mem: list[float] = []
    for rnd in range(rounds):
        for backend in (BACKENDS[::-1] if rnd % 2 == 0 else BACKENDS):
            if rnd == 0 and backend == "vulkan" and simulated:
                run = first
            else:
                run = swap(f"gpu-{mode}-{backend}-r{rnd}", mode=mode, backend=backend,
                           frames=frames, warmup=warmup)
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
                 "rounds": rounds, "frames": frames, "simulated": simulated and backend == "vulkan"}
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
