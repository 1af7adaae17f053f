"""`--stf URL`: SwapLab's DeviceFarmer STF client (harness/devices/android/stf.py) against
the STF-compatible server of harness/virtual_device/stf.py (STF itself needs RethinkDB, in
no package registry here). The server hands out SwapLab virtual phones; the client claims,
`adb connect`s (real adb server, private port and HOME), runs, and gives them back: at the
end, on a failed test, on a failed claim and on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers.lab import ADBS, run_pytest_subprocess

from harness.devices.android.stf import StfClaims, StfClient, StfError
from harness.profiles import load_profiles
from harness.virtual_device.stf import StfServer
from harness.virtual_device.testing import AdbLab, free_port

TOKEN = "stf-token-0123456789abcdef"  # the test server's own token
ME = "ci@farm.example"

PROFILE = """
name = "{name}"
marker = "{name}"
description = "virtual {name} phone (SwapLab STF tests)"
platform = "android"
[match]
soc_model = ["{soc}"]
board_platform = ["{platform}"]
[run]
threads = 1
[virtual]
abi = "x86_64"
[virtual.properties]
"ro.soc.model" = "{soc}"
"ro.board.platform" = "{platform}"
"ro.product.model" = "SwapLab {name}"
"ro.product.manufacturer" = "SwapLab"
"ro.build.version.sdk" = "34"
"ro.debuggable" = "1"
"""

#: the test the farm runs: a real program on the claimed phone, a measurement in the record
FARM_TEST = """
import os, time

PLATFORM = {{"snapdragon6": "parrot", "snapdragon865": "kona"}}

def test_on_farm_phone(device, recorder, profile):
    r = device.run(["getprop", "ro.board.platform"], timeout_s=60)
    assert r.ok and r.stdout.strip() == PLATFORM[profile.name], r
    recorder.measure("getprop_ms", r.duration_s * 1000.0, check_target=False)
    {extra}
"""


@pytest.fixture
def profiles(tmp_path):
    d = tmp_path / "profiles"
    d.mkdir()
    for name, soc, platform in (("snapdragon6", "SM6450", "parrot"),
                                ("snapdragon865", "SM8250", "kona")):
        (d / f"{name}.toml").write_text(PROFILE.format(name=name, soc=soc, platform=platform))
    return d


@pytest.fixture
def farm(tmp_path, profiles):
    """A private adb server, an STF server, and its phones: a free Snapdragon 6
    (SD6-FREE), a Snapdragon 865 (SD865-FREE), a Snapdragon 6 someone else uses
    (SD6-OTHER). None is adb-connected: claiming does that."""
    with AdbLab(tmp_path / "lab") as lab, StfServer({TOKEN: ME, "other-token": "bob@x"}) as stf:
        for serial, name in (("SD6-FREE", "snapdragon6"), ("SD865-FREE", "snapdragon865"),
                             ("SD6-OTHER", "snapdragon6")):
            vdev = lab.virtual_device(str(profiles / f"{name}.toml"), connect=False)
            stf.add_virtual(vdev, serial, owner="bob@x" if serial == "SD6-OTHER" else None)
        yield lab, stf


def adb_serials(lab) -> set[str]:
    return {i.serial for i in lab.client().list()}


def assert_released(stf, lab, serial):
    dev = stf.device(serial)
    assert dev["owner"] is None and dev["remoteConnect"] is False, dev
    assert stf.events.count(("DELETE", f"/api/v1/user/devices/{serial}", 200)) == 1
    assert ("DELETE", f"/api/v1/user/devices/{serial}/remoteConnect", 200) in stf.events
    assert not adb_serials(lab), "the remote device is still adb-connected"


def farm_run(tmp_path, lab, stf, profiles, test_body="", *args, token=TOKEN, popen=False,
             marker="snapdragon6"):
    (tmp_path / "test_farm.py").write_text(FARM_TEST.format(extra=test_body))
    env = dict(lab.env, SWAPLAB_STF_TOKEN=token)
    argv = ["--stf", stf.url, "-m", marker, "--profiles-dir", str(profiles),
            "--lab-out", str(tmp_path / "out"), "--adb-port", str(lab.port),
            "--no-local-device", "-p", "no:cacheprovider", *args, str(tmp_path / "test_farm.py")]
    if popen:
        return subprocess.Popen([sys.executable, "-m", "pytest", *argv], cwd=tmp_path,
                                env=dict(os.environ, **env), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    return run_pytest_subprocess(argv, cwd=tmp_path, timeout=600, env=env)


def test_claim_run_release(tmp_path, farm, profiles):
    """-m snapdragon6 claims exactly the free SD6 phone, the test runs on it (and on no
    other phone of the adb server) over adb, the record says which STF device it was (no
    token), and the phone is given back."""
    lab, stf = farm
    # a USB phone of the STF provider host: on its adb server, held by another STF user
    usb = lab.virtual_device(str(profiles / "snapdragon6.toml"))
    r = farm_run(tmp_path, lab, stf, profiles)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-5000:]
    assert TOKEN not in out
    record = json.loads((tmp_path / "out" / "latest" / "record.json").read_text())
    (serial, dev), = record["devices"].items()
    assert dev["stf"] == {"url": stf.url, "serial": "SD6-FREE", "remote_connect_url": serial,
                          "profile": "snapdragon6", "model": "snapdragon6"}
    assert dev["kind"] == "virtual" and dev["profile"] == "snapdragon6"
    assert [(t["device"], t["outcome"]) for t in record["tests"]] == [(serial, "passed")]
    assert TOKEN not in (tmp_path / "out" / "latest" / "record.json").read_text()
    assert usb.serial != serial
    lab.adb("disconnect", usb.serial)
    assert_released(stf, lab, "SD6-FREE")
    # the 865 (other profile) and the phone bob uses were never asked for
    assert not [e for e in stf.events if e[0] != "GET" and "SD6-FREE" not in e[1]
                and e[1] != "/api/v1/user/devices"]
    assert stf.device("SD6-OTHER")["owner"]["email"] == "bob@x"
    assert stf.device("SD865-FREE")["owner"] is None


def test_claimed_phones_run_in_parallel_on_xdist(tmp_path, farm, profiles):
    """`--stf URL -n auto` (the CI recipes' command): xdist counts the devices before
    pytest_configure, so the claim must come first; one worker per claimed phone, one run,
    one report line, both phones given back."""
    pytest.importorskip("xdist")
    lab, stf = farm
    r = farm_run(tmp_path, lab, stf, profiles, "", "-n", "auto",
                 marker="snapdragon6 or snapdragon865")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-5000:]
    assert "2 workers" in out and out.count("SwapLab report:") == 1, out[-3000:]
    assert len(list((tmp_path / "out" / "runs").iterdir())) == 1
    record = json.loads((tmp_path / "out" / "latest" / "record.json").read_text())
    by_stf = {d["stf"]["serial"]: s for s, d in record["devices"].items()}
    assert set(by_stf) == {"SD6-FREE", "SD865-FREE"}, record["devices"]
    assert sorted((t["device"], t["outcome"]) for t in record["tests"]) == sorted(
        (s, "passed") for s in by_stf.values())
    for serial in ("SD6-FREE", "SD865-FREE"):
        assert_released(stf, lab, serial)


def test_release_after_a_failed_test(tmp_path, farm, profiles):
    lab, stf = farm
    r = farm_run(tmp_path, lab, stf, profiles, "assert False, 'the model regressed'")
    assert r.returncode == 1, (r.stdout + r.stderr)[-5000:]
    assert "the model regressed" in r.stdout and "SD6-FREE released" in r.stdout
    assert_released(stf, lab, "SD6-FREE")


def test_release_on_sigterm(tmp_path, farm, profiles):
    """CI cancels a job with SIGTERM: the run stops, the record says "interrupted", and
    the phone goes back to STF before the process exits, even when SIGINT and SIGTERM
    arrive again while it is being given back (a slow STF here)."""
    lab, stf = farm
    stf.release_delay_s = 3.0
    started = tmp_path / "started"
    body = (f"open({str(started)!r}, 'w').close()\n"
            "    time.sleep(300)")
    proc = farm_run(tmp_path, lab, stf, profiles, body, popen=True)
    try:
        deadline = time.monotonic() + 300
        while not started.exists():
            assert proc.poll() is None, proc.stdout.read()[-5000:]
            assert time.monotonic() < deadline, "the farm test never started"
            time.sleep(0.2)
        assert stf.device("SD6-FREE")["owner"]["email"] == ME  # held while running
        proc.send_signal(signal.SIGTERM)
        while ("DELETE", "/api/v1/user/devices/SD6-FREE/remoteConnect", 200) not in stf.events:
            assert proc.poll() is None and time.monotonic() < deadline, "no release started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # while STF takes its time over the last call
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, out[-5000:]
    assert "SD6-FREE released" in out, out[-5000:]
    record = json.loads((tmp_path / "out" / "latest" / "record.json").read_text())
    assert record["status"] == "interrupted"
    assert_released(stf, lab, "SD6-FREE")


def test_wrong_token_is_refused_naming_the_url(tmp_path, farm, profiles):
    lab, stf = farm
    r = farm_run(tmp_path, lab, stf, profiles, token="not-the-token")
    out = r.stdout + r.stderr
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, out[-5000:]
    assert f"STF {stf.url}: GET /api/v1/devices: HTTP 401 Bad Credentials" in r.stderr
    assert "SWAPLAB_STF_TOKEN" in r.stderr and "not-the-token" not in out
    assert [e[2] for e in stf.events] == [401]
    r = farm_run(tmp_path, lab, stf, profiles, token="")
    assert r.returncode == pytest.ExitCode.USAGE_ERROR
    assert "no access token (set $SWAPLAB_STF_TOKEN" in r.stderr


def test_no_free_matching_device(tmp_path, farm, profiles):
    """The only free SD6 is taken first (by bob): the error names the profile, every device
    STF listed and why it does not qualify; nothing is claimed."""
    lab, stf = farm
    bob = StfClient(stf.url, "other-token")
    bob.add("SD6-FREE")
    before = len(stf.events)
    r = farm_run(tmp_path, lab, stf, profiles)
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, (r.stdout + r.stderr)[-5000:]
    err = r.stderr
    assert f"STF {stf.url}: no free device matches the profiles snapdragon6" in err
    assert "SD6-FREE (SWAPLAB snapdragon6, platform parrot, x86_64): " \
           "profile snapdragon6, used by bob@x" in err
    assert "SD865-FREE" in err and "profile snapdragon865" in err
    assert [e[0] for e in stf.events[before:]] == ["GET"]


def test_a_phone_failing_to_connect_is_given_back_and_the_others_run(tmp_path, farm,
                                                                     profiles):
    """Two SD6 phones; the second's remote address leads nowhere: it is given back at once,
    the run says why and goes on with the first, which goes back at the end. When no
    phone can be claimed, the run stops before any test (exit 4), nothing held."""
    lab, stf = farm
    vdev = lab.virtual_device(str(profiles / "snapdragon6.toml"), connect=False)
    stf.add_device("SD6-DEAD", dict(vdev.properties), f"127.0.0.1:{free_port()}")  # nobody
    r = farm_run(tmp_path, lab, stf, profiles)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    assert re.search(r"device SD6-DEAD at 127\.0\.0\.1:\d+: adb connect failed: .*; given "
                     r"back \(skipped\)", r.stdout), r.stdout[-5000:]
    record = json.loads((tmp_path / "out" / "latest" / "record.json").read_text())
    assert [d["stf"]["serial"] for d in record["devices"].values()] == ["SD6-FREE"]
    for serial in ("SD6-FREE", "SD6-DEAD"):
        assert_released(stf, lab, serial)

    StfClient(stf.url, "other-token").add("SD6-FREE")  # bob: only the dead one is free
    r = farm_run(tmp_path, lab, stf, profiles)
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, (r.stdout + r.stderr)[-5000:]
    assert f"STF {stf.url}: no device could be claimed:" in r.stderr
    assert "SD6-DEAD" in r.stderr and stf.device("SD6-DEAD")["owner"] is None
    assert stf.events.count(("DELETE", "/api/v1/user/devices/SD6-DEAD", 200)) == 2


def test_client_calls_and_refusals(farm, profiles):
    """The REST calls one by one: STF's answers, the 403 for a phone another user holds
    (named in the error), and what the server sees."""
    lab, stf = farm
    client = StfClient(stf.url + "/", TOKEN)
    listed = {d["serial"]: d for d in client.devices()}
    assert set(listed) == {"SD6-FREE", "SD865-FREE", "SD6-OTHER"}
    assert listed["SD6-OTHER"]["using"] is False and listed["SD6-OTHER"]["owner"]
    with pytest.raises(StfError, match=r"POST /api/v1/user/devices \(device SD6-OTHER\): "
                                       r"HTTP 403 Device is being used or not available"):
        client.add("SD6-OTHER")
    with pytest.raises(StfError, match=r"device SD6-OTHER\): HTTP 403 Device is not owned"):
        client.remote_connect("SD6-OTHER")
    with pytest.raises(StfError, match=r"HTTP 404 Not Found \(device\)"):
        client.add("NO-SUCH")
    claims = StfClaims(client, type("Opts", (), {"adb_port": lab.port})(),
                       progress=lambda m: None)
    got = claims.claim_matching(load_profiles(profiles), ["snapdragon865"])
    assert [(c.stf_serial, c.profile) for c in got] == [("SD865-FREE", "snapdragon865")]
    assert adb_serials(lab) == {got[0].adb_serial}
    assert lab.adb("-s", got[0].adb_serial, "shell", "getprop ro.soc.model").stdout \
        .strip() == b"SM8250"
    assert claims.release() == []
    assert_released(stf, lab, "SD865-FREE")
    # the server checks the header's form too
    assert stf.handle("GET", "/api/v1/devices", {"Authorization": f"Token {TOKEN}"}, b"") \
        == (401, {"success": False, "description":
                  'Authorization header should be in "Bearer $AUTH_TOKEN" format'})
    assert stf.handle("GET", "/api/v1/devices", {}, b"")[0] == 401


def test_server_strings_are_not_trusted():
    """A hostile STF: a remoteConnectUrl that is not host:port is refused (nothing reaches
    adb), control characters in its messages reach no terminal."""
    with StfServer({TOKEN: ME}) as stf:
        stf.add_device("EVIL\x1b[31m", {"ro.board.platform": "parrot"},
                       "127.0.0.1:5555 && rm -rf ~")
        client = StfClient(stf.url, TOKEN)
        client.add("EVIL\x1b[31m")
        with pytest.raises(StfError) as e:
            client.remote_connect("EVIL\x1b[31m")
    assert "is not host:port" in str(e.value) and "\x1b" not in str(e.value)
    assert "EVIL\\x1b[31m" in str(e.value)
    assert ("POST", "/api/v1/user/devices/EVIL%1B%5B31m/remoteConnect", 200) in stf.events


@pytest.mark.parametrize(("markexpr", "wanted"), [
    ("snapdragon6", ["snapdragon6"]),
    ("snapdragon6 or snapdragon865", ["snapdragon6", "snapdragon865"]),
    ("not snapdragon865 and swaplab_device", ["snapdragon6"]),
    ("snapdragon865 and not swaplab_power", ["snapdragon865"]),
    ("not snapdragon6", ["snapdragon865"]),
    ("swaplab_device", ["snapdragon6", "snapdragon865"]),
    ("", ["snapdragon6", "snapdragon865"]),
    ("host", []),
    ("host or snapdragon6", ["snapdragon6"]),
])
def test_profiles_a_run_selects(profiles, markexpr, wanted):
    from harness.devices.android.stf_run import wanted_profiles

    (profiles / "host.toml").write_text(
        'name = "host"\nmarker = "host"\ndescription = "this host"\nplatform = "linux"\n'
        '[match]\nkind = ["local"]\n[run]\nthreads = 1\n')
    config = type("Config", (), {"getoption": lambda self, name, default=None: markexpr})()
    assert wanted_profiles(config, load_profiles(profiles)) == wanted


def test_xdist_workers_claim_nothing_and_use_the_controllers_devices(monkeypatch):
    """A pytest-xdist worker gets --stf too: it calls no STF (no token here, nothing
    listens) and runs on the serials the controller claimed, from its environment."""
    from harness.devices.android import stf_run

    monkeypatch.setenv(stf_run.CLAIMED_ENV, "10.0.0.5:7401,10.0.0.6:7403")
    monkeypatch.delenv("SWAPLAB_STF_TOKEN", raising=False)
    config = type("WorkerConfig", (), {
        "workerinput": {}, "option": type("O", (), {"help": False})(),
        "getoption": lambda self, name, default=None: "http://127.0.0.1:9"})()
    lab = type("Lab", (), {"device_filter": ["all"]})()
    assert stf_run.claim_for_run(config, lab, print) is None
    assert lab.device_filter == ["10.0.0.5:7401", "10.0.0.6:7403"]


def test_stand_in_command(tmp_path, profiles):
    """`python -m harness.virtual_device stf --profile P`: the STF stand-in for trying
    `--stf` by hand; its token from the environment, stopped by SIGTERM."""
    env = dict(os.environ, SWAPLAB_STF_TOKEN=TOKEN, HOME=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.virtual_device", "stf", "--profile",
         str(profiles / "snapdragon865.toml")], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not (lines and lines[-1].startswith("STF stand-in at ")):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        url = lines[-1].split()[3]
        (dev,) = StfClient(url, TOKEN).devices()
        assert (dev["serial"], dev["cpuPlatform"], dev["owner"]) == ("VDEV-1", "kona", None)
        with pytest.raises(StfError, match="HTTP 401 Bad Credentials"):
            StfClient(url, "wrong").devices()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r = subprocess.run([sys.executable, "-m", "harness.virtual_device", "stf", "--profile",
                        "snapdragon6"], env=dict(env, SWAPLAB_STF_TOKEN=""),
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and "set $SWAPLAB_STF_TOKEN" in r.stderr


def test_token_is_not_sent_on_a_redirect():
    """An STF URL that redirects (to another host, or http -> https): the client stops
    and names the target; the token never reaches the target."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    seen = []

    class Target(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"success": true, "devices": []}')

        def log_message(self, *a):
            pass

    class Redirect(Target):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{target.server_port}/api/v1/devices")
            self.end_headers()

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    redirect = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for srv in (target, redirect):
        Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(StfError, match=r"HTTP 302 redirect to http://127\.0\.0\.1:\d+/api"
                                           r"/v1/devices: give that URL to --stf"):
            StfClient(f"http://127.0.0.1:{redirect.server_port}", TOKEN).devices()
        assert seen == []
    finally:
        for srv in (target, redirect):
            srv.shutdown()
            srv.server_close()


@pytest.mark.parametrize("adb", sorted(ADBS))
def test_phone_that_does_not_trust_this_host(tmp_path, profiles, monkeypatch, adb):
    """STF's note: a phone stays `unauthorized` until this host's adb key is added in STF.
    The claim fails saying so (adb 36 fails the connect, adb 29 connects to an
    unauthorized device), and the phone still goes back."""
    from harness.devices.android import stf as stf_module
    from harness.virtual_device.adbauth import TrustedKeys

    monkeypatch.setattr(stf_module, "CONNECT_TIMEOUT_S", 5.0)
    with AdbLab(tmp_path / "lab", ADBS[adb]) as lab, StfServer({TOKEN: ME}) as stf:
        vdev = lab.virtual_device(str(profiles / "snapdragon6.toml"), connect=False,
                                  trusted_keys=TrustedKeys())
        stf.add_virtual(vdev, "SD6-NEW")
        claims = StfClaims(StfClient(stf.url, TOKEN),
                           type("Opts", (), {"adb_port": lab.port})(), progress=lambda m: None)
        with pytest.raises(StfError, match=r"device SD6-NEW at 127\.0\.0\.1:\d+: adb state "
                                           r"'unauthorized'.*add ~/\.android/adbkey\.pub in STF"):
            claims.claim_matching(load_profiles(profiles), ["snapdragon6"])
        assert claims.release() == []
        assert_released(stf, lab, "SD6-NEW")
