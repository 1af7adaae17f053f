"""Device leases: a run holds the devices it uses; a second run skips (or waits) with a
message naming the run that holds the device; a killed holder leaves no stale lease; and
each run's output folders on the device carry its run id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.devices.lease import DeviceBusy, DeviceLease

pytestmark = pytest.mark.usefixtures("local_only")

HOLD = """
import sys, time
from pathlib import Path
from harness.devices.lease import DeviceLease
lease = DeviceLease("phone-1", "RUN-A", Path(sys.argv[1]), since="2026-11-29T10:00:00Z")
lease.acquire()
print("held", flush=True)
time.sleep(120)
"""


def _holder(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_is_refused_with_the_holder(tmp_path):
    proc = _holder(tmp_path)
    try:
        other = DeviceLease("phone-1", "RUN-B", tmp_path, since="now")
        with pytest.raises(DeviceBusy) as e:
            other.acquire()
        msg = str(e.value)
        assert msg.startswith("device phone-1 held by run RUN-A since 2026-11-29T10:00:00Z")
        assert f"pid {proc.pid}" in msg and "host " in msg
        t0 = time.monotonic()
        with pytest.raises(DeviceBusy, match=r"waited 0.6 s"):
            other.acquire(wait_s=0.6, poll_s=0.1)
        assert time.monotonic() - t0 >= 0.6
        free = DeviceLease("phone-2", "RUN-B", tmp_path, since="now")
        free.acquire()  # other devices are free
        free.release()
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_leaves_no_stale_lease(tmp_path):
    proc = _holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lease = DeviceLease("phone-1", "RUN-B", tmp_path, since="now")
    lease.acquire()
    assert lease.held
    lease.release()
    assert not lease.held


SUITE = """
import os, time
from pathlib import Path

def test_hold(recorder):
    recorder.measure("memory_peak_mb", 42.0)
    flag = Path(os.environ["FLAG"])
    flag.write_text("holding")
    for _ in range(600):
        if not flag.exists():
            break
        time.sleep(0.1)
"""


def _run(tmp_path, name, flag, *extra):
    env = dict(os.environ, FLAG=str(flag), SWAPLAB_BACKENDS="local")
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_suite.py", "-rs",
         "--lab-out", str(tmp_path / name), *extra], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_runs_on_one_device(tmp_path):
    """Run A holds `local`; run B skips its tests naming run A (measuring nothing on a busy
    device); with --lease-wait, B waits until A is done and then measures."""
    (tmp_path / "test_suite.py").write_text(SUITE)
    flag_a, flag_b = tmp_path / "a.flag", tmp_path / "b.flag"
    a = _run(tmp_path, "a", flag_a)
    try:
        for _ in range(600):
            if flag_a.exists():
                break
            time.sleep(0.1)
        else:
            pytest.fail("run A never started its test")
        b_out, _ = _run(tmp_path, "b", flag_b).communicate(timeout=300)
        a_id = next((tmp_path / "a" / "runs").iterdir()).name
        assert f"device local held by run {a_id} since" in b_out, b_out[-3000:]
        record_b = json.loads(next((tmp_path / "b" / "runs").glob("*/record.json")).read_text())
        assert [t["outcome"] for t in record_b["tests"]] == ["skipped"]
        assert record_b["measurements"] == []
        c = _run(tmp_path, "c", flag_b, "--lease-wait", "120")
        time.sleep(2)
        flag_a.unlink()  # A finishes and releases the device
        c_out, _ = c.communicate(timeout=300)
        assert c.returncode == 0, c_out[-3000:]
        record_c = json.loads(next((tmp_path / "c" / "runs").glob("*/record.json")).read_text())
        assert [t["outcome"] for t in record_c["tests"]] == ["passed"]
        assert record_c["devices"]["local"]["lease"]["run_id"] == record_c["run_id"]
    finally:
        for f in (flag_a, flag_b):
            f.unlink(missing_ok=True)
        a.wait(timeout=300)
    assert a.returncode == 0


def test_output_folders_on_the_device_carry_the_run_id(tmp_path, fast_profiles):
    """Two runs' out-NNN folders used to collide (each process counts from 001)."""
    suite = tmp_path / "test_frames.py"
    suite.write_text("def test_frames(swap):\n"
                     "    r = swap('f', warmup=0, frames=1, save_every=1)\n"
                     "    assert r.output_images\n"
                     "    print('ARGV', ' '.join(r.argv))\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s",
                        str(suite), "--profiles-dir", str(fast_profiles),
                        "--lab-out", str(tmp_path / "out")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, SWAPLAB_BACKENDS="local"), check=False)
    assert r.returncode == 0, r.stdout[-3000:]
    run_id = next((tmp_path / "out" / "runs").iterdir()).name
    argv = next(ln for ln in r.stdout.splitlines() if "ARGV" in ln)
    assert f"--out out-{run_id}-001-f" in argv, argv
