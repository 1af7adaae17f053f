"""The lease held on the device itself (harness.devices.device_lease): runs on two hosts
that reach one phone (a remote adb server) cannot both hold it; a lease whose host died
expires. Real adb binary, the virtual device; the two "hosts" are two adb connections
with their own holder names."""

from __future__ import annotations

import threading
import time

import pytest

from harness.devices.android.device import AndroidDevice, make_client
from harness.devices.device_lease import LEASE_DIR, OnDeviceLease, on_device_lease
from harness.devices.lease import DeviceBusy
from harness.virtual_device.testing import AdbLab, find_adb


@pytest.fixture()
def phone(tmp_path):
    if find_adb() is None:
        pytest.skip("no adb binary")
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device("snapdragon6")

        def connect() -> AndroidDevice:
            return AndroidDevice.connect(make_client("127.0.0.1", lab.port, socket_timeout=60),
                                         vd.serial)
        yield connect, vd


def test_a_second_host_is_refused_naming_the_holder(phone):
    connect, vd = phone
    a = OnDeviceLease(connect(), "RUN-A", since="2026-11-29T10:00:00Z", host="farm-host-1",
                      pid=111)
    b = OnDeviceLease(connect(), "RUN-B", since="2026-11-29T10:01:00Z", host="ci-host-2",
                      pid=222)
    a.acquire()
    try:
        with pytest.raises(DeviceBusy) as e:
            b.acquire(wait_s=1.0, poll_s=0.3)
        assert str(e.value) == (f"device {vd.serial} held by run RUN-A since "
                                "2026-11-29T10:00:00Z (pid 111, host farm-host-1); lease on "
                                "the device (waited 1 s)")
        assert (vd.sandbox.root / a.path.lstrip("/") / "owner").is_file()
    finally:
        a.release()
    assert not (vd.sandbox.root / a.path.lstrip("/")).exists()
    b.acquire()  # free again
    b.release()


def test_a_stale_lease_expires_and_a_renewed_one_does_not(phone):
    connect, _vd = phone
    alive = OnDeviceLease(connect(), "ALIVE", since="s", host="h1", ttl_s=3)
    alive.acquire()
    time.sleep(4.5)  # renewed every second: still held after its ttl
    other = OnDeviceLease(connect(), "OTHER", since="s", host="h2", ttl_s=3)
    with pytest.raises(DeviceBusy, match="held by run ALIVE"):
        other.acquire()
    # the holder's host dies: nothing renews (stop the thread without releasing)
    alive._stop.set()
    alive._thread.join()
    other.acquire(wait_s=10, poll_s=0.5)  # expires within ttl, then taken
    assert other.held
    # the old holder notices on its next renewal that it lost the lease, and stops
    alive._stop.clear()
    renew = threading.Thread(target=alive._renew_loop)
    renew.start()
    renew.join(timeout=20)
    assert not renew.is_alive()
    assert alive.lost == "the lease on the device was taken over (it had expired)"
    other.release()


def test_hostile_names_are_data_not_code(phone, tmp_path):
    connect, vd = phone
    marker = vd.sandbox.root / "pwned"
    evil = f"$(touch {marker}) `touch {marker}`; touch {marker}"
    lease = OnDeviceLease(connect(), evil, since=evil, host=evil)
    lease.acquire()
    lease.release()
    assert not marker.exists()


def test_only_devices_other_hosts_reach_get_one(phone):
    connect, _vd = phone
    assert on_device_lease(connect(), "R", since="s") is not None

    class Local:
        platform = "linux"
        serial = "local"
        workdir = "/tmp/x"

    assert on_device_lease(Local(), "R", since="s") is None
    assert LEASE_DIR.startswith(".")
