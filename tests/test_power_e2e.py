"""End to end on a virtual phone through adb (real adb binary, adbutils, real swap_runner
x86_64 build): the thermal fallback suite heats the device (its simulated thermal zone
follows the real CPU time of busy loops on the device), the runner in `--mode auto`
steps down and back up with every switch logged; then the sustained suite cools the
device down, runs for a few seconds with the sensors sampled and records power, energy
per frame, temperature and the time series."""

from __future__ import annotations

import json
import os

import pytest
from helpers.lab import REPO, run_pytest_subprocess

from harness.virtual_device.testing import AdbLab, find_adb

# A fast thermal model (tau 4 s, 5 W per busy core): the busy loops heat the device above
# the limit in seconds. How hot the runner alone keeps it depends on how much of the
# shared host CPU it gets, so the test scales the runner's CPU time in the simulated power
# model (`scale_runner_heat`, like a phone whose runner is cheaper than busy loops): with
# only the runner the device then cools below limit - hysteresis on any host load, and
# the step back up is exercised every time.
VTHERM = """
name = "vthermal"
marker = "vthermal"
description = "Virtual phone with a fast thermal model (SwapLab power/thermal tests)"
platform = "android"
[match]
soc_model = ["SWAPLAB-VTHERM"]
[targets]
power_avg_w = 50.0
temperature_max_c = 95.0
[run]
threads = 1
cpu_list = "4-7"
warmup_frames = 1
measured_frames = 3
cooldown_temperature_c = 45.0
cooldown_timeout_s = 90
timeout_s = 300
input = "camera"
camera_fps = 30
[power]
sustained_duration_virtual_s = 5
sample_interval_virtual_s = 0.5
status_interval_s = 1
thermal_limit_c = 47
thermal_hysteresis_c = 2
thermal_check_every = 2
fallback_duration_virtual_s = 14
heat_threads = 6
heat_margin_c = 12               # idle, the zone cools 2 C in 0.5 s (tau 4 s): start well above
heat_timeout_virtual_s = 60
[thermal]
fallback = ["fps", "gpu", "mode"]
fps_low = 10
[virtual]
abi = "x86_64"
[virtual.sensors]
tau_s = 4
p_core_w = 5.0
[virtual.properties]
"ro.soc.model" = "SWAPLAB-VTHERM"
"ro.board.platform" = "vtherm"
"ro.product.model" = "SwapLab Virtual Thermal"
"ro.product.manufacturer" = "SwapLab"
"ro.build.version.release" = "14"
"ro.build.version.sdk" = "34"
"ro.debuggable" = "1"
"""


def scale_runner_heat(vd, weight: float) -> None:
    """Count only `weight` of swap_runner's CPU time in the virtual device's simulated
    power (test scaffolding over the simulation's CPU-time input; other processes - the
    heating loops - count in full)."""
    sim = vd.sim
    orig = sim._cpu_seconds_delta
    tck = os.sysconf("SC_CLK_TCK")
    seen: dict[str, float] = {}

    def delta() -> float:
        sessions = set(sim.sessions)
        total = orig()
        runner, now = 0.0, {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            if raw[raw.find(b"(") + 1:raw.rfind(b")")] != b"swap_runner":
                continue
            rest = raw[raw.rfind(b")") + 2:].split()
            if int(rest[3]) not in sessions:
                continue
            now[pid] = (int(rest[11]) + int(rest[12])) / tck
            runner += max(0.0, now[pid] - seen.get(pid, 0.0))
        seen.clear()
        seen.update(now)
        return max(0.0, total - (1 - weight) * runner)

    sim._cpu_seconds_delta = delta


@pytest.mark.skipif(find_adb() is None, reason="no adb binary")
def test_power_and_thermal_suites_on_virtual_device(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "vthermal.toml").write_text(VTHERM)
    out = tmp_path / "out"
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device(str(profiles / "vthermal.toml"))
        scale_runner_heat(vd, 0.1)
        env = dict(lab.env)
        env.pop("PYTHONPATH", None)
        args = [str(REPO / "suites" / "test_thermal.py"), str(REPO / "suites" / "test_power.py"),
                "-m", "vthermal", "--profiles-dir", str(profiles), "--lab-out", str(out),
                "--adb-port", str(lab.port), "--no-local-device", "-v", "-rs"]
        r = run_pytest_subprocess(args, cwd=tmp_path, timeout=1800, env=env)
        assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-3000:]
        run_dir = (out / "latest").resolve()
        record = json.loads((run_dir / "record.json").read_text())
    tests = {t["nodeid"].split("::")[-1].split("[")[0]: t for t in record["tests"]}
    assert tests["test_thermal_fallback"]["outcome"] == "passed", \
        tests["test_thermal_fallback"].get("message")
    assert tests["test_sustained_power"]["outcome"] == "passed", tests
    ms = record["measurements"]

    # fallback: switches logged, stepped down and back up, latency per mode
    sw = next(m for m in ms if m["metric"] == "thermal_mode_switches")
    assert sw["extra"]["steps_down"] >= 1 and sw["extra"]["steps_up"] >= 1, sw["extra"]
    assert all(s["reason"] in ("above_limit", "below_limit_minus_hysteresis")
               and s["temp_c"] is not None for s in sw["extra"]["switches"])
    # the ladder: frame rate first (30 -> 10 fps), the GPU rung skipped (CPU-only build),
    # then the mode; back up in reverse order: the mode first
    steps = [s for s in sw["extra"]["steps"] if not s["skipped"]]
    downs = [s["rung"] for s in steps if s["direction"] == "down"]
    assert downs[:2] == ["fps", "mode"], steps
    ups = [s["rung"] for s in steps if s["direction"] == "up"]
    assert ups and ups[0] == "mode", steps
    assert any(s["rung"] == "gpu" and s["skipped"] for s in sw["extra"]["steps"]), sw["extra"]
    modes = {m["extra"]["variant"] for m in ms if m["metric"] == "latency_total_ms"
             and m["extra"]["variant"].startswith("fallback")}
    assert {"fallback mode=small", "fallback mode=base"} <= modes, modes
    print("fallback:", sw["extra"]["steps_down"], "down,", sw["extra"]["steps_up"], "up")

    # sustained: power, energy per frame, temperature; simulated and flagged so
    names = {m["metric"] for m in ms if "sustained" in m["extra"].get("variant", "")}
    assert {"power_avg_w", "power_p95_w", "energy_per_frame_mj", "temperature_max_c",
            "temperature_rise_c", "latency_drift_pct", "latency_total_ms"} <= names, names
    dropped = next(m for m in ms if m["metric"] == "frames_dropped")
    assert dropped["extra"]["camera_fps"] == 30 and dropped["summary"]["max"] >= 0, dropped
    pw = next(m for m in ms if m["metric"] == "power_avg_w")
    assert pw["extra"]["simulated"] is True and pw["target"]["verdict"] == "pass"
    assert 0.3 < pw["summary"]["mean"] < 20, pw["summary"]

    # the time series is in the run folder, one clock for samples, frames and switches
    series = [a for a in record["artifacts"] if a["kind"] == "samples"]
    docs = {json.loads((run_dir / a["path"]).read_text())["kind"]: a for a in series}
    assert {"sustained", "thermal_fallback"} <= set(docs)
    fb = json.loads((run_dir / docs["thermal_fallback"]["path"]).read_text())
    assert fb["check"]["ok"] and fb["check"]["reached_limit"], fb["check"]
    assert fb["check"]["cooled_below"], fb["check"]
    assert fb["mode_switches"] and fb["samples"] and fb["frames"]
    assert any(s["temp_max_c"] for s in fb["samples"])
    su = json.loads((run_dir / docs["sustained"]["path"]).read_text())
    assert all("thermally_affected" in f for f in su["frames"])
    assert sum(1 for s in su["samples"] if s["power_w"] is not None) >= 3

    # the report plots latency, power, temperature and mode over time
    html = (run_dir / "index.html").read_text()
    assert "Power and thermal" in html
    for panel in ("frame latency (ms)", "power (W)", "temperature (hottest zone) (C)",
                  "limit - hysteresis", "camera frame rate (fps)", "fps 30-&gt;10"):
        assert panel in html, panel


@pytest.mark.skipif(find_adb() is None, reason="no adb binary")
def test_unreadable_battery_current_skips_power_with_the_reason(tmp_path):
    """`current_now` unreadable (virtual device fault): no power value is made up; the
    temperatures are still recorded and, as the profile targets power_avg_w, the test
    skips naming device, metric and the sensor's error."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "vthermal.toml").write_text(VTHERM)
    out = tmp_path / "out"
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device(str(profiles / "vthermal.toml"),
                                faults=["sensor-unreadable=battery/current_now"])
        env = dict(lab.env)
        env.pop("PYTHONPATH", None)
        args = [str(REPO / "suites" / "test_power.py"), "-m", "vthermal",
                "--profiles-dir", str(profiles), "--lab-out", str(out),
                "--adb-port", str(lab.port), "--no-local-device", "-v", "-rs"]
        r = run_pytest_subprocess(args, cwd=tmp_path, timeout=900, env=env)
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
        record = json.loads((out / "latest" / "record.json").read_text())
    (t,) = record["tests"]
    assert t["outcome"] == "skipped", t
    assert vd.serial in t["message"] and "power_avg_w" in t["message"]
    assert "Is a directory" in t["message"], t["message"]
    metrics = {m["metric"] for m in record["measurements"]}
    assert "power_avg_w" not in metrics and "energy_per_frame_mj" not in metrics
    assert {"temperature_max_c", "latency_total_ms"} <= metrics
