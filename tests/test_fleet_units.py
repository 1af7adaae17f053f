"""The pieces of a parallel run without running one (issue 16): device scopes, the health
rules, worker journals merged into one record, and the report for many devices."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from helpers.lab import run_pytest_subprocess
from helpers.records import EVIL, make_record

from harness.fleet.health import DeviceHealth
from harness.fleet.scopes import (
    HOST_CPU_SCOPE,
    device_scopes,
    host_cpu_parallel,
    scope_of,
    serial_in_nodeid,
    workers_for,
)
from harness.record.run_record import RunRecord, load_record
from harness.report.fleet import timeline_svg
from harness.report.html import render_html

DEVICES = [("local", "local"), ("127.0.0.1:5555", "virtual"), ("R5CT-2", "android"),
           ("R5CT", "android")]


def test_every_device_is_one_scope_and_host_cpu_devices_can_share_one():
    par = device_scopes(DEVICES, "parallel")
    assert len(set(par.values())) == 4 and workers_for(par) == 4
    assert host_cpu_parallel(DEVICES, par) == 2
    ser = device_scopes(DEVICES, "serial")
    assert ser["local"] == ser["127.0.0.1:5555"] == HOST_CPU_SCOPE
    assert len(set(ser.values())) == 3 and host_cpu_parallel(DEVICES, ser) == 1


def test_a_test_id_names_its_device_scope():
    scopes = device_scopes(DEVICES)
    assert serial_in_nodeid("suites/test_modes.py::test_mode[R5CT-2-tiny]", scopes) == "R5CT-2"
    assert serial_in_nodeid("suites/test_modes.py::test_mode[R5CT-tiny]", scopes) == "R5CT"
    assert serial_in_nodeid("s/t.py::test_x[lowlight-127.0.0.1:5555]", scopes) \
        == "127.0.0.1:5555"
    assert serial_in_nodeid("s/t.py::test_plain", scopes) is None
    assert scope_of("s/t.py::test_plain", scopes) == "module:s/t.py"
    assert scope_of("s/t.py::test_x[local]", scopes) == scopes["local"]


def test_health_reconnects_once_then_offline():
    h = DeviceHealth("emu")
    assert h.dropped("t1", "a", "gone") is True
    h.reconnected("t1", "a", "adb connect emu")
    assert (h.connects, h.reconnects, h.retries, h.offline) == (2, 1, 1, False)
    assert h.dropped("t2", "b", "gone again") is False  # a second drop: no second chance
    h.go_offline("t2", "b", "gone again")
    assert h.offline and "device emu offline since t2" in h.skip_reason()
    assert [e["event"] for e in h.events] == ["drop", "reconnected; test retried", "drop",
                                              "offline"]


def test_worker_journals_merge_into_one_record_once(tmp_path):
    rec = RunRecord.create(tmp_path, {}, run_id="run1")
    w0 = RunRecord.for_worker(rec.run_dir, "run1", "gw0")
    w1 = RunRecord.for_worker(rec.run_dir, "run1", "gw1")
    w0.add_test("t::a[x]", "x", "passed", 1.0)
    w1.add_measurement({"device": "y", "metric": "m"})
    w1.add_test("t::a[y]", "y", "passed", 2.0)
    w1.close()
    with open(w1.journal_path, "ab") as f:  # a worker killed mid-write: half a line
        f.write(b'{"op":"add_test","args":{"te')
    w1b = RunRecord.for_worker(rec.run_dir, "run1", "gw1")  # its replacement appends
    w1b.add_test("t::b[y]", "y", "passed", 3.0)
    # while the run goes on (or after the controller died), readers see the workers' part
    live = load_record(rec.run_dir)
    assert [t["nodeid"] for t in live["tests"]] == ["t::a[x]", "t::a[y]", "t::b[y]"]
    assert rec.merge_workers() == 4 and rec.merge_workers() == 0
    rec.finish()
    data = json.loads(rec.path.read_text())
    assert [t["nodeid"] for t in data["tests"]] == ["t::a[x]", "t::a[y]", "t::b[y]"]
    assert data["measurements"] == [{"device": "y", "metric": "m"}]
    assert load_record(rec.run_dir)["tests"] == data["tests"]  # not merged twice


def _fleet_record() -> dict:
    rec = make_record("r1", devices=("emu-1", EVIL, "phone-3"), p95_target=120.0)
    rec["started"] = "2026-11-23T23:40:00Z"
    for m in rec["measurements"]:
        if m["target"]:
            m["target"]["measured"] = m["summary"]["p95"]
    for i, dev in enumerate(rec["devices"]):
        rec["tests"].append({"nodeid": f"suites/test_latency.py::test_latency[{dev}]",
                             "device": dev, "outcome": "passed", "duration_s": 5.0,
                             "message": "", "ended": f"2026-11-23T23:40:{10 + i:02d}.000Z"})
    rec["devices"]["phone-3"]["health"] = {
        "connects": 1, "drops": 1, "reconnects": 0, "retries": 0,
        "offline_since": "2026-11-23T23:41:00Z", "offline_reason": EVIL,
        "events": [{"time": "2026-11-23T23:41:00Z", "event": "offline", "test": EVIL,
                    "detail": EVIL}]}
    return rec


def test_report_for_many_devices_overview_health_and_folds(tmp_path):
    html = render_html(_fleet_record(), tmp_path)
    # overview first: one row per device, a column per targeted metric, before the verdicts
    assert html.index('class="fleet-overview"') < html.index('class="verdicts"')
    overview = html.split('class="fleet-overview"', 1)[1].split("</table>", 1)[0]
    assert overview.count("<tr>") == 4 and "latency_total_ms" in overview
    assert overview.count('class="verdict pass"') == 3  # every device within its target
    # the health table: the offline phone, since when
    health = html.split('class="device-health"', 1)[1].split("</table>", 1)[0]
    assert "offline since 2026-11-23T23:41:00Z" in health and "phone-3" in health
    # one folding section per device; the one that went offline starts open
    assert html.count('<details class="device"') == 3
    opened = [chunk.split(">", 1)[0] for chunk in html.split('<details class="device"')[1:]]
    assert [c.endswith(" open") for c in opened] == [False, False, True], opened
    # everything from devices is escaped
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_timeline_has_a_lane_per_device_and_escapes_it():
    svg = timeline_svg(_fleet_record())
    root = ET.fromstring(svg)  # well-formed XML: the hostile serial is escaped
    rects = [e for e in root.iter() if e.tag.endswith("rect")]
    assert len(rects) == 3 and EVIL not in svg
    labels = [e.text for e in root.iter() if e.tag.endswith("text")]
    assert EVIL in labels  # shown as text, not markup


CRASHING_SUITE = """
import os

def test_measures_then_its_worker_dies(device, recorder):
    recorder.measure("latency_total_ms", [1.0, 2.0, 3.0])
    if not os.path.exists("died-once"):  # the first time only: the retry then passes
        open("died-once", "w").close()
        os._exit(3)  # the worker process dies (an OOM kill, a segfault in a C extension)

def test_after(device, recorder):
    recorder.measure("memory_peak_mb", [10.0])
"""


def test_a_worker_that_dies_loses_nothing_it_measured(tmp_path, local_only):
    """pytest-xdist with a worker killed in the middle of a test: the run is still one
    run; what the test measured before is in the record, the crash is an error naming
    it, the worker's replacement runs the rest (pytest-xdist runs the crashed test again)
    into the same run."""
    (tmp_path / "test_suite.py").write_text(CRASHING_SUITE)
    out = tmp_path / "out"
    r = run_pytest_subprocess(["-n", "1", "--lab-out", str(out), "test_suite.py"],
                              cwd=tmp_path, timeout=300)
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-2000:]
    runs = list((out / "runs").iterdir())
    assert len(runs) == 1
    record = json.loads((runs[0] / "record.json").read_text())
    outcomes = [(t["nodeid"].split("::")[-1], t["outcome"]) for t in record["tests"]]
    assert sorted(outcomes) == [("test_after[local]", "passed"),
                                ("test_measures_then_its_worker_dies[local]", "error"),
                                ("test_measures_then_its_worker_dies[local]", "passed")]
    crash = next(t for t in record["tests"] if t["outcome"] == "error")
    assert "crashed" in crash["message"] and crash["device"] == "local"
    # the dead worker's measurement, its replacement's two
    assert sorted(m["metric"] for m in record["measurements"]) == [
        "latency_total_ms", "latency_total_ms", "memory_peak_mb"]
    assert sum(ln.startswith("SwapLab report: ") for ln in r.stdout.splitlines()) == 1
