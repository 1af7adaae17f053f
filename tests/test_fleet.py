"""A device farm in one run (issue 16; docs/fleet.md): `pytest suites -n 3` with this host
and two virtual phones (snapdragon6, snapdragon865) on a private adb server runs the
devices in parallel on pytest-xdist workers, and the controller makes ONE run of it: one
run folder, one record with every device's tests, one report line. A phone that drops
mid-run is reconnected once and its test retried, or goes offline while the others
finish; nothing measured is lost.

The stand-in runner (test_suites_fake_runner) sleeps per frame, as a phone computing on
its own CPU would: the run's wall time then shows whether the devices ran in parallel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.lab import REPO, device_python, run_pytest_subprocess, write_fake_runner
from test_suites_fake_runner import FAKE_RUNNER_BODY, PLUGIN
from test_virtual_e2e import FAST_SD6

from conftest import HOST_PROFILE_FAST
from harness.record.run_record import load_record
from harness.virtual_device.testing import AdbLab

FAST_SD865 = (FAST_SD6.replace('"snapdragon6"', '"snapdragon865"')
              .replace("SM6450", "SM8250").replace("parrot", "kona")
              .replace("Snapdragon 6 Gen 1", "Snapdragon 865")
              .replace("Virtual SD6", "Virtual SD865"))
#: the suites every device runs here: quick with the fast profiles, no real runner needed
SUITES = [str(REPO / "suites" / f"test_{n}.py")
          for n in ("latency", "cold_start", "memory", "modes", "low_light")]
#: per measured or warm-up frame, the stand-in runner "computes" this long
FRAME_S = 0.25


@pytest.fixture
def fleet_profiles(tmp_path) -> Path:
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "host.toml").write_text(HOST_PROFILE_FAST.format(latency_target=60000.0))
    (d / "snapdragon6.toml").write_text(FAST_SD6)
    (d / "snapdragon865.toml").write_text(FAST_SD865)
    return d


def install_slow_stand_in(tmp_path: Path) -> None:
    body = FAKE_RUNNER_BODY.replace("for i in range(a.warmup + a.frames):",
                                    "import time\nfor i in range(a.warmup + a.frames):\n"
                                    f"    time.sleep({FRAME_S})")
    runner = write_fake_runner(tmp_path / "swap_runner", body, device_python())
    (tmp_path / "fake_build.py").write_text(PLUGIN.format(runner=str(runner)))


def run_fleet(tmp_path, lab, profiles, out, *args: str):
    env = dict(lab.env, PYTHONPATH=str(tmp_path), SWAPLAB_CACHE=str(tmp_path / "cache"))
    return run_pytest_subprocess(
        [*SUITES, "-p", "fake_build", "--profiles-dir", str(profiles), "--lab-out", str(out),
         "--adb-port", str(lab.port), "--backends", "local,android", "-rs", *args],
        cwd=tmp_path, timeout=600, env=env)


def _seconds(stamp: str) -> float:
    import datetime as dt  # only here: ISO stamps of the record

    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.UTC).timestamp()


def test_three_devices_in_parallel_make_one_run(tmp_path, fleet_profiles):
    install_slow_stand_in(tmp_path)
    out = tmp_path / "out"
    with AdbLab(tmp_path / "lab") as lab:
        sd6 = lab.virtual_device(str(fleet_profiles / "snapdragon6.toml"))
        sd865 = lab.virtual_device(str(fleet_profiles / "snapdragon865.toml"))
        r = run_fleet(tmp_path, lab, fleet_profiles, out, "-n", "3")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    runs = list((out / "runs").iterdir())
    assert len(runs) == 1, runs  # one run folder, not one per worker
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("SwapLab report: ")]
    assert len(lines) == 1 and r.stdout.strip().splitlines()[-1] == lines[0], r.stdout[-3000:]
    record = json.loads((runs[0] / "record.json").read_text())
    assert record["status"] == "finished" and record["workers_merged"] is True
    assert load_record(runs[0])["tests"] == record["tests"]  # merged once, not twice
    passed: dict[str, set[str]] = {}
    for t in record["tests"]:
        assert t["outcome"] == "passed", t
        passed.setdefault(t["device"], set()).add(t["nodeid"].split("::")[0])
    assert set(passed) == {"local", sd6.serial, sd865.serial}, passed
    assert all(len(files) == len(SUITES) for files in passed.values()), passed
    assert {m["device"] for m in record["measurements"]} == set(passed)
    fleet = record["environment"]["fleet"]
    assert fleet["workers"] == 3 and len(set(fleet["scopes"].values())) == 3
    assert fleet["host_cpu_parallel"] == 3
    # one history entry
    import sqlite3  # only here: a look into the history the run imported into

    with sqlite3.connect(out / "history.sqlite") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 1
    # in parallel: the devices' test time adds up to well over the run's wall time
    busy = sum(t["duration_s"] for t in record["tests"])
    wall = _seconds(record["finished"]) - _seconds(record["started"])
    assert busy >= 1.4 * wall, (busy, wall)
    html = (runs[0] / "index.html").read_text()
    assert 'class="fleet-overview"' in html and html.count('<details class="device"') == 3


def test_dropped_devices_reconnect_once_or_go_offline(tmp_path, fleet_profiles):
    """On one parallel run: the snapdragon6 phone's link blips once during the first
    runner start (reconnect, the test runs again and passes); the snapdragon865 phone is
    unplugged when the low-light suite starts (the reconnect fails: offline, its remaining
    tests skip naming it). The host finishes; everything measured before is kept; the
    report's device-health table says what happened."""
    install_slow_stand_in(tmp_path)
    out = tmp_path / "out"
    with AdbLab(tmp_path / "lab") as lab:
        blip = lab.virtual_device(str(fleet_profiles / "snapdragon6.toml"),
                                  faults=["blip-after=0.3"])
        gone = lab.virtual_device(str(fleet_profiles / "snapdragon865.toml"),
                                  faults=["drop-after=0.3:--enhance"])
        r = run_fleet(tmp_path, lab, fleet_profiles, out, "-n", "3")
    assert r.returncode == 1, r.stdout[-6000:] + r.stderr[-3000:]
    assert sum(ln.startswith("SwapLab report: ") for ln in r.stdout.splitlines()) == 1
    record = json.loads((out / "latest" / "record.json").read_text())
    by_dev: dict[str, list[dict]] = {}
    for t in record["tests"]:
        by_dev.setdefault(t["device"], []).append(t)
    assert {t["outcome"] for t in by_dev["local"]} == {"passed"}

    # the blip: one drop, one reconnect, the test retried and passed, the rest passed
    h = record["devices"][blip.serial]["health"]
    assert (h["drops"], h["reconnects"], h["retries"], h["connects"]) == (1, 1, 1, 2), h
    assert h["offline_since"] is None
    dropped = [t for t in by_dev[blip.serial] if t["outcome"] == "dropped"]
    assert len(dropped) == 1 and blip.serial in dropped[0]["message"], by_dev[blip.serial]
    again = [t for t in by_dev[blip.serial] if t["nodeid"] == dropped[0]["nodeid"]]
    assert [t["outcome"] for t in again] == ["dropped", "passed"], [t["message"] for t in again]
    assert {t["outcome"] for t in by_dev[blip.serial]} == {"dropped", "passed"}

    # the unplugged phone: offline after the failed reconnect, the rest skipped naming it
    h = record["devices"][gone.serial].get("health")
    assert h, [(t["nodeid"], t["outcome"], t["message"][:300]) for t in by_dev[gone.serial]]
    assert h["drops"] == 1 and h["reconnects"] == 0 and h["offline_since"], h
    tests = by_dev[gone.serial]
    first = next(i for i, t in enumerate(tests) if t["outcome"] == "dropped")
    assert all(t["outcome"] == "passed" for t in tests[:first]) and first > 0, tests
    assert "low_light" in tests[first]["nodeid"] and "disconnected" in tests[first]["message"]
    rest = tests[first + 1:]
    assert rest and all(t["outcome"] == "skipped" and f"device {gone.serial} offline since"
                        in t["message"] for t in rest), rest
    # nothing measured lost: what the phone measured before it went is in the record
    measured = {m["test"] for m in record["measurements"] if m["device"] == gone.serial}
    assert {t["nodeid"] for t in tests[:first]} <= measured
    assert f"device {gone.serial} offline since" in r.stdout  # -rs: the skip reasons

    html = (out / "latest" / "index.html").read_text()
    assert 'class="device-health"' in html and "offline since" in html
