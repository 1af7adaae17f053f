"""Faults on the virtual iPhone, as on Android: unplugged mid-run, app crash, untrusted
device, full storage. Each gives a clear message naming the device, and nothing already
measured or pushed is lost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.paths import REPO
from test_ios_device import SLEEPY_BODY, argv, discover_closing, pack
from test_ios_e2e import ios_profiles, run_lab_on_iphone  # noqa: F401 (fixture)
from test_suites_fake_runner import install_stand_in_runner

from harness.devices import DeviceDisconnected, DeviceError
from harness.virtual_device.ios.launch import IosLab

#: pymobiledevice3 leaves cyclic garbage: collected after this module (conftest)
pytestmark = pytest.mark.usefixtures("collect_garbage_after_module")



@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("USBMUXD_SOCKET_ADDRESS", raising=False)


def test_unplugged_mid_run_raises_disconnected(tmp_path, home, request):
    with IosLab(tmp_path / "lab") as lab:
        phone = lab.iphone("iphone15pro", faults=["drop-after=1:--frames"])
        [dev] = discover_closing(request, lab.address, tmp_path)
        dev.sync(pack(tmp_path, SLEEPY_BODY))
        with pytest.raises(DeviceDisconnected) as e:
            dev.run(argv(), 60, env={"SLEEP_S": "30"})
        assert phone.udid in str(e.value) and "disconnected during run" in str(e.value)
        assert discover_closing(request, lab.address, tmp_path) == []


def test_app_crash_is_reported_with_its_partial_output(tmp_path, home, request):
    body = "print('frame 0 done', flush=True)\nimport time\ntime.sleep(30)\nprint_summary()\n"
    with IosLab(tmp_path / "lab") as lab:
        phone = lab.iphone("iphone15pro", faults=["kill-app=1:--frames"])
        [dev] = discover_closing(request, lab.address, tmp_path)
        dev.sync(pack(tmp_path, body))
        r = dev.run(argv(), 60)
        assert not r.ok and not r.timed_out and r.exit_code == 255
        assert "ended without writing its exit status: it crashed" in r.stderr
        assert phone.udid in r.stderr
        assert "frame 0 done" in r.stdout  # what the app wrote before the crash is kept


def test_untrusted_device_is_skipped_with_a_clear_message(tmp_path, home, request):
    with IosLab(tmp_path / "lab") as lab:
        phone = lab.iphone("iphone15pro", faults=["untrusted"])
        good = lab.iphone("iphonese3")
        found = discover_closing(request, lab.address, tmp_path)
        assert [d.serial for d in found] == [good.udid]
        r = subprocess.run([sys.executable, "-m", "harness.cli", "devices", "--usbmux",
                            lab.address, "--no-local-device"], cwd=REPO,
                           env={"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin",
                                "SWAPLAB_BACKENDS": "ios"},
                           capture_output=True, text=True, timeout=120, check=False)
        assert good.udid in r.stdout and phone.udid not in r.stdout
        assert f"iOS device {phone.udid}" in r.stderr and "not paired with this host" in r.stderr
        assert "tap 'Trust'" in r.stderr


def test_full_storage_names_the_file_and_keeps_what_was_pushed(tmp_path, home, request):
    with IosLab(tmp_path / "lab") as lab:
        phone = lab.iphone("iphone15pro", faults=["full-storage=13000"])
        [dev] = discover_closing(request, lab.address, tmp_path)
        files = pack(tmp_path)
        (tmp_path / "big.bin").write_bytes(b"z" * 20000)
        files["inputs/frames/zz_big.bin"] = tmp_path / "big.bin"
        with pytest.raises(DeviceError) as e:
            dev.sync(files)
        msg = str(e.value)
        assert phone.udid in msg and "storage full" in msg and "inputs/frames/zz_big.bin" in msg
        docs = phone.apps.container("com.swaplab.runner") / "Documents"
        manifest = json.loads((docs / ".swaplab-manifest.json").read_text())
        # what was pushed before the failure is recorded and is not pushed again
        assert "inputs/frames/a.jpg" in manifest and "inputs/frames/zz_big.bin" not in manifest
        del files["inputs/frames/zz_big.bin"]
        again = dev.sync(files)
        assert "inputs/frames/a.jpg" in again.skipped and "app:com.swaplab.runner" in again.skipped
        assert set(again.pushed) == {"inputs/source/s.jpg", "models/manifest.json"}


def test_unplugged_during_the_lab_errors_and_keeps_measurements(tmp_path, ios_profiles):  # noqa: F811
    """Through pytest: the phone is unplugged when the power suite's first run starts (launches: --version, latency, power); that test
    is recorded as dropped naming the device, the phone goes offline, and the latency
    already measured stays in the record."""
    install_stand_in_runner(tmp_path)
    out = tmp_path / "out"
    with IosLab(tmp_path / "lab") as lab:
        phone = lab.iphone(str(ios_profiles / "iphone15pro.toml"),
                           faults=["drop-after=0:launch=3"])
        r = run_lab_on_iphone(tmp_path, lab, ios_profiles, out, "test_latency.py",
                              "test_power.py")
        assert r.returncode != 0
        record = json.loads((out / "latest" / "record.json").read_text())
        assert record["status"] == "finished"
        by = {t["nodeid"].split("::")[0].rsplit("/", 1)[-1]: t for t in record["tests"]}
        assert by["test_latency.py"]["outcome"] == "passed"
        bad = by["test_power.py"]
        # the drop is recorded as such (harness.fleet.retry); the reconnect then fails (the
        # phone stays unplugged) and the phone is offline for the rest of the run
        assert bad["outcome"] == "dropped" and phone.udid in bad["message"]
        assert "disconnected" in bad["message"]
        health = record["devices"][phone.udid]["health"]
        assert health["drops"] == 1 and health["offline_since"], health
        assert any(m["metric"] == "latency_total_ms" for m in record["measurements"])
