"""End to end: `pytest suites -m iphone15pro --usbmux SOCK` with a virtual iPhone 15 Pro behind
a virtual usbmuxd runs the latency, memory and power suites through the iOS backend (real
pymobiledevice3 client: lockdown TLS, installation_proxy, house_arrest/AFC, DVT process
control and sysmontap, diagnostics_relay); the record and the report show an iOS (virtual)
device; a second run installs nothing and pushes zero bytes."""

from __future__ import annotations

import json
import re

import pytest
from helpers.lab import REPO, run_pytest_subprocess
from test_suites_fake_runner import install_stand_in_runner

from harness.virtual_device.ios.launch import IosLab

#: pymobiledevice3 leaves cyclic garbage: collected after this module (conftest)
pytestmark = pytest.mark.usefixtures("collect_garbage_after_module")


FAST_IPHONE15PRO = """
name = "iphone15pro"
marker = "iphone15pro"
description = "iPhone 15 Pro (A17 Pro) (fast settings for SwapLab tests)"
platform = "ios"
[match]
product_model = ["iPhone16,1", "iPhone16,2"]
[targets]
latency_p95_ms = 60000.0
memory_peak_mb = 4096.0
[run]
threads = 2
warmup_frames = 1
measured_frames = 3
timeout_s = 300
[power]
sustained_duration_virtual_s = 4
sample_interval_virtual_s = 0.5
status_interval_s = 1
[virtual]
abi = "x86_64"
[virtual.properties]
ProductType = "iPhone16,1"
HardwareModel = "D83AP"
ChipID = "0x8130"
ProductVersion = "17.5.1"
BuildVersion = "21F90"
DeviceName = "SwapLab virtual iPhone 15 Pro"
"""

SUITES = ("test_latency.py", "test_memory.py", "test_power.py")


@pytest.fixture
def ios_profiles(tmp_path):
    d = tmp_path / "profiles"
    d.mkdir()
    for p in (REPO / "device_profiles").glob("*.toml"):
        if p.name != "iphone15pro.toml":
            (d / p.name).write_text(p.read_text())
    (d / "iphone15pro.toml").write_text(FAST_IPHONE15PRO)
    return d


def run_lab_on_iphone(tmp_path, lab, profiles_dir, out, *suites: str):
    env = {"PYTHONPATH": str(tmp_path), "SWAPLAB_CACHE": str(tmp_path / "cache"),
           "HOME": str(tmp_path / "home")}
    args = [*(str(REPO / "suites" / s) for s in suites), "-m", "iphone15pro", "-p", "fake_build",
            "--profiles-dir", str(profiles_dir), "--lab-out", str(out),
            "--usbmux", lab.address, "--backends", "ios", "-v"]
    return run_pytest_subprocess(args, cwd=tmp_path, timeout=900, env=env)


def test_suites_on_virtual_iphone(tmp_path, ios_profiles):
    install_stand_in_runner(tmp_path)
    out = tmp_path / "out"
    with IosLab(tmp_path / "lab") as lab:
        phone = lab.iphone(str(ios_profiles / "iphone15pro.toml"))
        r = run_lab_on_iphone(tmp_path, lab, ios_profiles, out, *SUITES)
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
        record = json.loads((out / "latest" / "record.json").read_text())
        dev = record["devices"][phone.udid]
        assert dev["kind"] == "virtual" and dev["platform"] == "ios" and dev["simulated"] is True
        assert dev["properties"]["ProductType"] == "iPhone16,1"
        assert dev["properties"]["HardwareModel"] == "D83AP"
        assert dev["profile"] == "iphone15pro"
        tests = record["tests"]
        assert tests and all(t["device"] == phone.udid for t in tests)
        outcomes = {t["nodeid"].split("::")[0].rsplit("/", 1)[-1]: t["outcome"] for t in tests}
        assert outcomes == dict.fromkeys(SUITES, "passed"), tests
        metrics = {m["metric"] for m in record["measurements"] if m["device"] == phone.udid}
        assert "latency_total_ms" in metrics and "power_avg_w" in metrics, metrics
        # the app was installed through installation_proxy and the pack pushed through AFC
        assert "app:com.swaplab.runner" in dev["sync"]["pushed"]
        assert dev["sync"]["bytes_pushed"] > 0
        installed = phone.apps.info("com.swaplab.runner")
        assert installed and (phone.apps.container("com.swaplab.runner") / "Documents" /
                              "models" / "manifest.json").is_file()
        html = (out / "latest" / "index.html").read_text()
        assert phone.udid in html
        assert re.search(r"<td>virtual iOS \(simulated sensors\)</td>", html), "report must mark it"
        assert "iPhone16,1" in html

        # unchanged runner and pack: nothing installed, nothing pushed
        r2 = run_lab_on_iphone(tmp_path, lab, ios_profiles, out, "test_memory.py")
        assert r2.returncode == 0, r2.stdout[-4000:]
        sync = json.loads((out / "latest" / "record.json").read_text())["devices"][
            phone.udid]["sync"]
        assert sync["bytes_pushed"] == 0 and sync["pushed"] == []
        assert "app:com.swaplab.runner" in sync["skipped"]


def test_real_runner_on_virtual_iphone(tmp_path, ios_profiles):
    """The real swap_runner host build and model pack as the app of the virtual iPhone:
    installed through installation_proxy, telemetry written by the runner to the run folder in
    Documents (the app contract), read back over AFC."""
    out = tmp_path / "out"
    with IosLab(tmp_path / "lab") as lab:
        phone = lab.iphone(str(ios_profiles / "iphone15pro.toml"))
        env = {"HOME": str(tmp_path / "home")}
        args = [str(REPO / "suites" / "test_latency.py"), "-m", "iphone15pro",
                "--profiles-dir", str(ios_profiles), "--lab-out", str(out),
                "--usbmux", lab.address, "--backends", "ios", "-v"]
        r = run_pytest_subprocess(args, cwd=tmp_path, timeout=3600, env=env)
        assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
        record = json.loads((out / "latest" / "record.json").read_text())
        dev = record["devices"][phone.udid]
        assert dev["kind"] == "virtual" and dev["platform"] == "ios"
        assert record["environment"]["runner_builds"]["x86_64"]["abi"] == "x86_64"
        lat = [m for m in record["measurements"]
               if m["metric"] == "latency_total_ms" and m["device"] == phone.udid]
        assert lat and len(lat[0]["samples"]) == 3 and lat[0]["summary"]["p95"] > 0
        app = phone.apps.info("com.swaplab.runner")["_app"]
        assert (app / "swap_runner").is_file()  # the host build is the app's executable
