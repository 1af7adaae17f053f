"""Fixtures the plugin provides to suites.

  lab           (session)  the LabSession: profiles, devices, the run record
  device        (session)  the Device under test; tests using it are parametrized
                           over the selected devices (ids = serial)
  profile       (session)  the device's Profile (targets, run settings)
  swap_runner   (session)  swap_runner built, pushed and checked on the device, once
  recorder      (function) records measurements; `recorder.assert_targets()`
  artifacts_dir (function) this test's folder inside the run folder
  swap          (function) run swap_runner once: `swap(label, mode=..., ...)` -> RunnerRun,
                           telemetry and output frames kept as artifacts
  swaplab_gates (function, autouse) before a device-bound test on an Android device:
                           battery, charging (power tests), thermal state / cool-down;
                           skips the test with the reason when a gate says so
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.devices.lease import DeviceBusy
from harness.record.recorder import Recorder
from harness.runner.invoke import RunnerRun, cool_down, run_swap
from harness.session import UNMATCHED, LabSession

LAB_KEY = pytest.StashKey[LabSession]()


@pytest.fixture(scope="session")
def lab(request) -> LabSession:
    try:
        return request.config.stash[LAB_KEY]
    except KeyError:
        pytest.fail("SwapLab plugin is not active (is harness installed / -p harness.plugin?)")


@pytest.fixture(scope="session")
def device(request, lab):
    serial = getattr(request, "param", None)
    if serial is None:
        pytest.fail("the `device` fixture is parametrized by the SwapLab plugin; "
                    "it cannot be requested here")
    a = lab.assignment(serial)
    try:
        lab.hold(serial)
    except DeviceBusy as e:  # session scope: every test of this device skips with this
        pytest.skip(str(e))
    lab.register_device(a)
    return a.device


@pytest.fixture(scope="session")
def profile(device, lab):
    return lab.assignment(device.serial).profile or UNMATCHED


@pytest.fixture(scope="session")
def swap_runner(device, lab):
    return lab.prepared_runner(device.serial)


@pytest.fixture
def recorder(request, device, lab) -> Recorder:
    a = lab.assignment(device.serial)
    return Recorder(lab.record, request.node.nodeid, device.serial, device.name, a.profile,
                    cpu_emulation=device.cpu_emulation)


@pytest.fixture
def artifacts_dir(request, device, lab) -> Path:
    return lab.artifacts_dir(device.serial, request.node.nodeid)


#: tests measuring power: the charging gate applies (USB power distorts battery current)
POWER_MARKER = "swaplab_power"


def is_power_test(item: pytest.Item) -> bool:
    module = getattr(getattr(item, "module", None), "__name__", "") or ""
    return item.get_closest_marker(POWER_MARKER) is not None \
        or module.rpartition(".")[2] == "test_power"


@pytest.fixture(autouse=True)
def swaplab_gates(request):
    """Android gates before each device-bound test (no-op for other tests and devices)."""
    if "device" not in request.fixturenames or getattr(request.node, "callspec", None) is None \
            or "device" not in request.node.callspec.params:
        return None
    lab_session = request.config.stash.get(LAB_KEY, None)
    if lab_session is None:
        return None
    serial = request.getfixturevalue("device").serial
    res = lab_session.check_gates(serial, test=request.node.nodeid,
                                  power_test=is_power_test(request.node))
    if res is not None and not res.ok:
        pytest.skip(res.skip_reason)
    return res


@pytest.fixture
def swap(swap_runner, artifacts_dir, recorder, lab):
    def _run(label: str = "run", **kwargs) -> RunnerRun:
        cd = cool_down(swap_runner.device, swap_runner.settings, progress=lab.progress)
        if cd.get("cooldown") not in ("not configured", "no temperature sensor"):
            lab.record.add_device(swap_runner.device.serial, {"cooldown": cd})
        r = run_swap(swap_runner, label=label, artifacts_dir=artifacts_dir, **kwargs)
        recorder.note_runner(r.argv, swap_runner.build_info)
        mode = r.telemetry.summary.get("mode")
        if r.telemetry_path:
            recorder.artifact("telemetry", r.telemetry_path, label=label, mode=mode)
        for img in r.output_images:
            recorder.artifact("output_frame", img, label=label, mode=mode)
        return r
    return _run
