"""End to end: `pytest suites -m snapdragon6` with a virtual Snapdragon 6 device attached
to a private adb server selects and runs the suites through adb (real adb binary, adbutils),
the record and report show the device as virtual/simulated, and a second run pushes zero
bytes of the unchanged pack."""

from __future__ import annotations

import json
import re

import pytest
from helpers.lab import REPO, run_pytest_subprocess
from test_suites_fake_runner import install_stand_in_runner

from harness.runner.invoke import BINARY, VIDEO_PLUGIN
from harness.virtual_device.testing import AdbLab

FAST_SD6 = """
name = "snapdragon6"
marker = "snapdragon6"
description = "Snapdragon 6 Gen 1 (SM6450) class phone (fast settings for SwapLab tests)"
platform = "android"
[match]
soc_model = ["SM6450"]
board_platform = ["parrot"]
[targets]
latency_p95_ms = 60000.0
memory_peak_mb = 4096.0
[run]
threads = 2
cpu_list = "4-7"
warmup_frames = 1
measured_frames = 3
cold_start_runs = 1
timeout_s = 300
[virtual]
abi = "x86_64"
[virtual.properties]
"ro.soc.model" = "SM6450"
"ro.board.platform" = "parrot"
"ro.product.model" = "SwapLab Virtual SD6"
"ro.product.manufacturer" = "SwapLab"
"ro.build.version.release" = "14"
"ro.build.version.sdk" = "34"
"ro.debuggable" = "1"
"""


#: suites that must pass on the virtual phone with the fast profile
CORE_SUITES = {"test_latency.py", "test_cold_start.py", "test_memory.py", "test_modes.py",
               "test_low_light.py"}
#: known legitimate skips there and what their reason names: FAST_SD6 has no [power]
#: section (no thermal_limit_c to check the fallback against); A/B needs a second runner
KNOWN_SKIPS = {"test_thermal_fallback": "thermal_limit_c", "test_ab_latency": "--ab-runner",
               "test_ab_quality": "--ab-runner"}


def run_lab_on_virtual(tmp_path, lab, profiles_dir, out, *pytest_args: str):
    """pytest on the virtual phones of `lab` only (-m snapdragon6), with the stand-in runner
    that install_stand_in_runner(tmp_path) put there."""
    env = dict(lab.env, PYTHONPATH=str(tmp_path), SWAPLAB_CACHE=str(tmp_path / "cache"))
    args = [*pytest_args, "-m", "snapdragon6", "-p", "fake_build",
            "--profiles-dir", str(profiles_dir), "--lab-out", str(out),
            "--adb-port", str(lab.port), "--no-local-device", "-v"]
    return run_pytest_subprocess(args, cwd=tmp_path, timeout=900, env=env)


def check_outcomes(tests: list[dict]) -> None:
    """No test failed or errored, the core suites passed, and a skip (other suites may
    legitimately skip, e.g. for settings this fast profile lacks) says why."""
    bad = [t for t in tests if t["outcome"] not in ("passed", "skipped")]
    assert not bad, bad
    for t in tests:
        if t["outcome"] == "skipped":
            name = t["nodeid"].split("::")[-1].split("[")[0]
            file = t["nodeid"].split("::")[0].rsplit("/", 1)[-1]
            assert file not in CORE_SUITES and t["message"].strip(), t
            assert KNOWN_SKIPS.get(name, "") in t["message"], t
    passed = {t["nodeid"].split("::")[0].rsplit("/", 1)[-1] for t in tests
              if t["outcome"] == "passed"}
    assert CORE_SUITES <= passed, (CORE_SUITES - passed, tests)


@pytest.fixture
def sd6_profiles(tmp_path):
    d = tmp_path / "profiles"
    d.mkdir()
    for p in (REPO / "device_profiles").glob("*.toml"):
        if p.name != "snapdragon6.toml":
            (d / p.name).write_text(p.read_text())
    (d / "snapdragon6.toml").write_text(FAST_SD6)
    return d


def test_suites_on_virtual_snapdragon6(tmp_path, sd6_profiles):
    install_stand_in_runner(tmp_path)
    out = tmp_path / "out"
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device(str(sd6_profiles / "snapdragon6.toml"))
        # the stand-in runner copies frames instead of swapping: blend quality needs the real one
        r = run_lab_on_virtual(tmp_path, lab, sd6_profiles, out, str(REPO / "suites"),
                               "-k", "not blend_quality")
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
        record = json.loads((out / "latest" / "record.json").read_text())
        assert record["status"] == "finished"
        dev = record["devices"][vd.serial]
        assert dev["kind"] == "virtual" and dev["simulated"] is True
        assert dev["properties"]["ro.soc.model"] == "SM6450" and dev["profile"] == "snapdragon6"
        assert dev["adb_server"] == f"127.0.0.1:{lab.port}"  # through the private adb server
        assert dev["sync"]["bytes_pushed"] > 0
        tests = record["tests"]
        # -m snapdragon6 selected the device-bound tests, all bound to the virtual phone
        assert tests and all(t["device"] == vd.serial for t in tests)
        assert all(f"[{vd.serial}" in t["nodeid"] for t in tests)
        check_outcomes(tests)
        assert dev["gates"]["checks"] == len(tests) and not dev["gates"]["skipped"]
        html = (out / "latest" / "index.html").read_text()
        assert vd.serial in html
        assert re.search(r"<td>virtual \(simulated sensors\)</td>", html), "report must mark it"

        # second run of the unchanged pack: zero bytes pushed, shown in the record
        r2 = run_lab_on_virtual(tmp_path, lab, sd6_profiles, out,
                                str(REPO / "suites" / "test_memory.py"), "-k", "not blend_quality")
        assert r2.returncode == 0, r2.stdout[-4000:]
        rec2 = json.loads((out / "latest" / "record.json").read_text())
        sync = rec2["devices"][vd.serial]["sync"]
        assert sync["bytes_pushed"] == 0 and sync["pushed"] == [] and sync["skipped"]


def test_device_dropping_mid_run_errors_others_go_on(tmp_path, sd6_profiles):
    """Two virtual phones; one is unplugged (drop fault) when the low-light suite starts:
    the test it was running fails naming the device and the disconnect (the one
    reconnect fails: harness.fleet.retry), its remaining tests skip as offline, the
    other phone's tests all pass, and the record keeps what the dropped phone measured
    before."""
    install_stand_in_runner(tmp_path)
    out = tmp_path / "out"
    prof = str(sd6_profiles / "snapdragon6.toml")
    with AdbLab(tmp_path / "lab") as lab:
        good = lab.virtual_device(prof)
        bad = lab.virtual_device(prof, faults=["drop-after=0:--enhance"])
        # the stand-in runner copies frames instead of swapping: blend quality needs the real one
        r = run_lab_on_virtual(tmp_path, lab, sd6_profiles, out, str(REPO / "suites"),
                               "-k", "not blend_quality")
        assert r.returncode != 0
        record = json.loads((out / "latest" / "record.json").read_text())
        assert record["status"] == "finished"
        by_dev: dict[str, list] = {}
        for t in record["tests"]:
            by_dev.setdefault(t["device"], []).append(t)
        check_outcomes(by_dev[good.serial])
        bad_tests = by_dev[bad.serial]
        failed = [t for t in bad_tests if t["outcome"] in ("error", "failed", "dropped")]
        assert [t["outcome"] for t in failed] == ["dropped"], bad_tests
        for t in failed:
            assert bad.serial in t["message"] and "disconnected" in t["message"], t
        after = bad_tests[bad_tests.index(failed[0]) + 1:]
        assert after and all(t["outcome"] == "skipped" and f"device {bad.serial} offline"
                             in t["message"] for t in after), after
        assert record["devices"][bad.serial]["health"]["drops"] == 1
        # measured before the drop: kept
        assert any(t["outcome"] == "passed" for t in bad_tests)
        measured = {m["device"] for m in record["measurements"]}
        assert {good.serial, bad.serial} <= measured
        assert bad.serial in r.stdout and "disconnected" in r.stdout


def test_real_runner_on_virtual_snapdragon6(tmp_path, sd6_profiles):
    """The real swap_runner Android x86_64 build (static, as an emulator runs it) and model
    pack, pushed over adb to a virtual phone, pinned to device CPUs 4-7 (mapped onto this
    host), measured through shell v2."""
    out = tmp_path / "out"
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device(str(sd6_profiles / "snapdragon6.toml"))
        env = dict(lab.env)
        env.pop("PYTHONPATH", None)
        args = [str(REPO / "suites" / "test_latency.py"), "-m", "snapdragon6",
                "--profiles-dir", str(sd6_profiles), "--lab-out", str(out),
                "--adb-port", str(lab.port), "--no-local-device", "-v"]
        r = run_pytest_subprocess(args, cwd=tmp_path, timeout=3600, env=env)
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
        record = json.loads((out / "latest" / "record.json").read_text())
        dev = record["devices"][vd.serial]
        assert dev["kind"] == "virtual" and dev["simulated"] is True
        build = record["environment"]["runner_builds"]["x86_64"]
        assert build["abi"] == "x86_64" and build["platform"] == "android"
        assert build["ncnn_runtime_cpu"] is True and build["ncnn_kernels"][0] == "sse2"
        lat = [m for m in record["measurements"]
               if m["metric"] == "latency_total_ms" and m["device"] == vd.serial]
        assert lat and len(lat[0]["samples"]) == 3 and lat[0]["summary"]["p95"] > 0
        # the harness installs the runner as bin/swap_runner; a static Android build has no
        # video plugin (it cannot dlopen), so none is pushed
        assert BINARY in dev["sync"]["pushed"]
        assert VIDEO_PLUGIN not in dev["sync"]["pushed"]


def test_android_gates_skip_and_cool_down(tmp_path, sd6_profiles):
    """Before measuring on an Android device the lab checks its gates with the profile's
    settings: a phone below `min_battery_pct` skips with the reason; a hot phone waits
    for its (simulated) thermal zones to cool below `cooldown_temperature_c`, then runs.
    Both land in the record's device entry."""
    install_stand_in_runner(tmp_path)
    prof = sd6_profiles / "snapdragon6.toml"
    prof.write_text(FAST_SD6.replace("timeout_s = 300", "timeout_s = 300\nmin_battery_pct = 30\n"
                                     "cooldown_temperature_c = 40.0\ncooldown_timeout_s = 120"))
    out = tmp_path / "out"
    with AdbLab(tmp_path / "lab") as lab:
        flat = lab.virtual_device(str(prof), faults=["battery=10"])
        hot = lab.virtual_device(str(prof), faults=["hot=50"])
        r = run_lab_on_virtual(tmp_path, lab, sd6_profiles, out,
                               str(REPO / "suites" / "test_memory.py"))
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    record = json.loads((out / "latest" / "record.json").read_text())
    tests = {t["device"]: t for t in record["tests"]}
    assert tests[flat.serial]["outcome"] == "skipped"
    assert "battery 10% is below the 30% minimum" in tests[flat.serial]["message"]
    assert tests[hot.serial]["outcome"] == "passed", tests[hot.serial]
    g = record["devices"][flat.serial]["gates"]
    assert g["checks"] == 1 and g["skipped"][0]["reason"] in tests[flat.serial]["message"]
    assert g["last"]["facts"]["battery_pct"] == 10
    dev = record["devices"][hot.serial]
    assert dev["debuggable"] is True and dev["emulator"] is False and dev["virtual"] is True
    facts = dev["gates"]["last"]["facts"]
    assert dev["gates"]["last"]["ok"] and facts["cooldown_s"] > 0
    assert facts["temperature_max_c"] <= 40.0
    # the per-run cool-down honours the simulated zones and says they are simulated
    assert dev["cooldown"]["simulated"] is True and dev["cooldown"]["temp_c"] <= 40.0
    assert {m["device"] for m in record["measurements"]} == {hot.serial}
