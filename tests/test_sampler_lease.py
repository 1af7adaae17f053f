"""The on-device sampler stops by itself when the harness that started it is gone
(SIGTERM or SIGKILL, no clean-up run): its lease is no longer renewed. Real adb, the
virtual device, a harness in a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.virtual_device.testing import AdbLab, find_adb

REPO = Path(__file__).resolve().parents[1]
LEASE_S = 3

HARNESS = r"""
import sys, time
from harness.devices.android.device import AndroidDevice
from harness.devices.android.device import make_client
client = make_client("127.0.0.1", int(sys.argv[1]), socket_timeout=60)
d = AndroidDevice.connect(client, sys.argv[2])
s = d.start_sampler(0.2, lease_s=float(sys.argv[3]))
time.sleep(0.5)
_, pid, _ = d.shell2(f"cat {d.workdir}/{s.proc.base}.pid")
print(pid.strip(), d.workdir + "/" + s.proc.base + ".out", flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_sampler_ends_when_its_harness_is_killed(tmp_path, sig):
    if find_adb() is None:
        pytest.skip("no adb binary")
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device("snapdragon6")
        child = subprocess.Popen([sys.executable, "-c", HARNESS, str(lab.port), vd.serial,
                                  str(LEASE_S)], cwd=REPO, env=dict(lab.env, PYTHONPATH=str(REPO)),
                                 stdout=subprocess.PIPE, text=True)
        try:
            pid_text, out_path = child.stdout.readline().split()
            pid = int(pid_text)  # the device's programs are host processes
            out = vd.sandbox.root / out_path.lstrip("/")
            # renewed while the harness lives: still sampling after twice the lease
            time.sleep(2 * LEASE_S)
            assert _alive(pid), "the sampler stopped although its lease was renewed"
            size = out.stat().st_size
            assert size > 0
        finally:
            child.send_signal(sig)
            child.wait(30)
        deadline = time.monotonic() + LEASE_S + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), f"sampler {pid} still running {LEASE_S + 10} s after {sig!r}"
        text = out.read_text()
        assert "X lease" in text and "expired or removed" in text
        final = out.stat().st_size
        time.sleep(1.0)
        assert out.stat().st_size == final  # the output file stops growing
