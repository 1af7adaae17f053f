"""The iOS backend against the virtual iPhone, through the real pymobiledevice3 client code
(usbmuxd plist protocol, lockdownd TLS, AFC, house_arrest, installation_proxy, DVT,
diagnostics_relay): discovery and identity, refusals, hash-skipped pushes, runs, timeouts,
sensors. Faults (unplug, crash, untrusted, full storage) are in test_ios_faults.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from helpers.lab import REPO, write_fake_runner
from test_suites_fake_runner import FAKE_RUNNER_BODY

from harness.devices import DeviceError, DiscoveryOptions
from harness.devices.ios import discover
from harness.virtual_device.ios.launch import IosLab

#: pymobiledevice3 leaves cyclic garbage: collected after this module (conftest)
pytestmark = pytest.mark.usefixtures("collect_garbage_after_module")


SLEEPY_BODY = "import time\ntime.sleep(float(os.environ.get('SLEEP_S', '60')))\nprint_summary()\n"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # pymobiledevice3 keeps state in ~
    monkeypatch.delenv("USBMUXD_SOCKET_ADDRESS", raising=False)
    return tmp_path / "home"


@pytest.fixture
def lab(tmp_path, home):
    with IosLab(tmp_path / "lab") as lab:
        yield lab


def discover_closing(request, address, tmp_path):
    """discover() on `address`; the devices' connections and loops close at teardown."""
    found = discover(DiscoveryOptions(usbmux=address, work_root=str(tmp_path / "w")))
    for d in found:
        request.addfinalizer(d.close)
    return found


def pack(tmp_path, body=FAKE_RUNNER_BODY):
    runner = write_fake_runner(tmp_path / "swap_runner", body)
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "manifest.json").write_text("{}")
    (tmp_path / "src.jpg").write_bytes(b"\xff\xd8" + b"x" * 5000)
    return {"bin/swap_runner": runner, "models/manifest.json": tmp_path / "m" / "manifest.json",
            "inputs/source/s.jpg": tmp_path / "src.jpg", "inputs/frames/a.jpg": tmp_path / "src.jpg"}


def argv(frames=3):
    return ["./bin/swap_runner", "--models", "models", "--source", "inputs/source/s.jpg",
            "--target", "inputs/frames", "--mode", "small", "--warmup", "1", "--frames",
            str(frames), "--telemetry", "-"]


def test_lockdown_identity_through_real_client(lab):
    from pymobiledevice3.lockdown import create_using_usbmux
    from pymobiledevice3.usbmux import list_devices
    phone = lab.iphone("iphone15pro")

    async def go():
        [mux] = await list_devices(usbmux_address=lab.address)
        ld = await create_using_usbmux(mux.serial, autopair=False, usbmux_address=lab.address)
        try:
            return mux.serial, ld.paired, dict(ld.all_values)
        finally:
            await ld.close()
    serial, paired, values = asyncio.run(go())
    assert serial == phone.udid and paired
    assert values["ProductType"] == "iPhone16,1" and values["HardwareModel"] == "D83AP"
    assert values["ChipID"] == 0x8130 and values["ProductVersion"] == "17.5.1"


def test_lockdown_refuses_a_host_without_the_pairing(lab, tmp_path, request):
    """StartSession with another HostID is refused; TLS without the pairing's client
    certificate fails: the device authenticates the host."""
    from pymobiledevice3.lockdown import create_using_usbmux
    from pymobiledevice3.pair_records import get_preferred_pair_record
    lab.iphone("iphone15pro")

    async def go():
        from pymobiledevice3.usbmux import list_devices
        [mux] = await list_devices(usbmux_address=lab.address)
        record = await get_preferred_pair_record(mux.serial, tmp_path,
                                                 usbmux_address=lab.address)
        forged = dict(record, HostID="00000000-0000-0000-0000-000000000000")
        ld = await create_using_usbmux(mux.serial, autopair=False, pair_record=forged,
                                       usbmux_address=lab.address)
        await ld.close()
        # right HostID, but a certificate the pairing root never signed
        from harness.virtual_device.ios.pairing import make_pairing
        other = make_pairing("x").host_record()
        wrong = dict(record, HostCertificate=other["HostCertificate"],
                     HostPrivateKey=other["HostPrivateKey"])
        from pymobiledevice3.exceptions import ConnectionTerminatedError
        with pytest.raises(ConnectionTerminatedError):  # the device ends the TLS session
            await create_using_usbmux(mux.serial, autopair=False, pair_record=wrong,
                                      usbmux_address=lab.address)
        return ld.paired
    assert asyncio.run(go()) is False


def test_swaplab_devices_lists_the_virtual_iphone(tmp_path, home):
    """`swaplab virtual-device start --usbmux SOCK`, then `swaplab devices --usbmux SOCK`."""
    sock = tmp_path / "mux.sock"
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen([sys.executable, "-m", "harness.cli", "virtual-device", "start",
                               "--profile", "iphone15pro", "--usbmux", str(sock)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline()
        assert first.startswith("virtual iPhone ") and "iPhone16,1" in first, first
        r = subprocess.run([sys.executable, "-m", "harness.cli", "devices", "--usbmux", str(sock),
                            "--no-local-device"], cwd=REPO, env={**env, "SWAPLAB_BACKENDS": "ios"},
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        [line] = [ln for ln in r.stdout.splitlines() if ln.strip()]
        serial, kind, _name, _abi, prof = line.split("\t")
        assert kind == "virtual" and prof.startswith("iphone15pro (marker iphone15pro")
        assert "product_model = iPhone16,1" in prof and serial in first
        # the same through the libimobiledevice variable
        r2 = subprocess.run([sys.executable, "-m", "harness.cli", "devices", "--no-local-device"],
                            cwd=REPO, env={**env, "SWAPLAB_BACKENDS": "ios",
                                           "USBMUXD_SOCKET_ADDRESS": str(sock)},
                            capture_output=True, text=True, timeout=120, check=False)
        assert serial in r2.stdout, r2.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()


def test_sync_run_pull_and_skip_unchanged(lab, tmp_path, request):
    phone = lab.iphone("iphonese3")
    [dev] = discover_closing(request, lab.address, tmp_path)
    assert dev.properties["ProductType"] == "iPhone14,6" and dev.kind == "virtual"
    files = pack(tmp_path)
    first = dev.sync(files)
    assert "app:com.swaplab.runner" in first.pushed and "models/manifest.json" in first.pushed
    again = dev.sync(files)
    assert again.pushed == () and again.bytes_pushed == 0
    # a file changed on the host is pushed again; a file changed on the phone too (size)
    (tmp_path / "m" / "manifest.json").write_text('{"v": 2}')
    docs = phone.apps.container("com.swaplab.runner") / "Documents"
    (docs / "inputs" / "source" / "s.jpg").write_bytes(b"short")
    third = dev.sync(files)
    assert set(third.pushed) == {"models/manifest.json", "inputs/source/s.jpg"}
    r = dev.run(argv(), 120)
    assert r.ok and '"type": "summary"' in r.stdout
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["thermal_state"] == "nominal"  # the app's ProcessInfo.thermalState
    with pytest.raises(DeviceError, match="only\\s+inside the runner app|inside the runner app"):
        dev.run(["sh", "-c", "id"], 10)


def test_install_refused_for_a_program_the_device_cannot_run(lab, tmp_path, request):
    lab.iphone("iphone15pro")
    [dev] = discover_closing(request, lab.address, tmp_path)
    macho = tmp_path / "swap_runner"
    macho.write_bytes(b"\xcf\xfa\xed\xfe" + b"\0" * 64)  # an arm64 Mach-O, as Xcode makes
    with pytest.raises(DeviceError, match="refused to install.*IncorrectArchitecture"):
        dev.sync({"bin/swap_runner": macho})


def test_timeout_kills_the_app(lab, tmp_path, request):
    phone = lab.iphone("iphone15pro")
    [dev] = discover_closing(request, lab.address, tmp_path)
    dev.sync(pack(tmp_path, SLEEPY_BODY))
    r = dev.run(argv(), timeout_s=2, env={"SLEEP_S": "120"})
    assert r.timed_out and not r.ok and "killed after timeout of 2 s" in r.stderr
    assert phone.apps.running_processes() == []


def test_sensors_battery_and_app_usage(lab, tmp_path, request):
    lab.iphone("iphone15pro", faults=["hot=44"])
    [dev] = discover_closing(request, lab.address, tmp_path)
    before = {s.name: s for s in dev.read_sensors()}
    assert before["battery_temp_c"].simulated and 25 < before["battery_temp_c"].value < 50
    assert before["battery_current_ua"].value < 0  # discharging: negative, as on Android
    assert before["battery_power_w"].value > 0
    assert before["app_footprint_peak_mb"].value is None and before["app_footprint_peak_mb"].reason
    dev.sync(pack(tmp_path, SLEEPY_BODY))
    r = dev.run(argv(), 60, env={"SLEEP_S": "2"})
    assert r.ok, r.stderr
    after = {s.name: s for s in dev.read_sensors()}
    # sysmontap measured the app process (a real process of this host)
    assert after["app_footprint_peak_mb"].value > 1 and not after["app_footprint_peak_mb"].simulated
    assert after["thermal_state_level"].value in (0, 1, 2, 3)


def test_missing_battery_sensor_is_skipped_with_the_reason(lab, tmp_path, request):
    lab.iphone("iphone15pro", faults=["no-battery"])
    [dev] = discover_closing(request, lab.address, tmp_path)
    readings = {s.name: s for s in dev.read_sensors()}
    assert readings["battery_temp_c"].value is None
    assert "no AppleSmartBattery" in readings["battery_temp_c"].reason


def test_ios17_phone_without_tunnel_says_how_to_start_it(request):
    """A real iOS 17+ phone needs the RemoteXPC tunnel for DVT; without a tunnel for it the
    backend names the phone and the command (whether or not a tunneld runs here)."""
    from harness.devices.ios.device import IosDevice
    dev = IosDevice("00008130-00FFFFFFFFFFFFFF", {"ProductType": "iPhone16,1",
                                                  "ProductVersion": "17.5.1",
                                                  "DeviceName": "Lab phone"}, None)
    request.addfinalizer(dev.close)
    with pytest.raises(DeviceError) as e:
        dev._loop.call(dev._dvt_provider(), 60)
    msg = str(e.value)
    assert "00008130-00FFFFFFFFFFFFFF" in msg and "iOS 17.5.1" in msg
    assert "RemoteXPC tunnel" in msg and "pymobiledevice3 remote tunneld" in msg
