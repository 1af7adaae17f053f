"""The virtual device authenticates adb hosts as adbd does (RSA keys, AUTH TOKEN /
SIGNATURE / RSAPUBLICKEY), tested with the real adb binary and with a scripted host."""

from __future__ import annotations

import shutil
import socket
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from helpers.lab import ADBS

from harness.virtual_device import adbauth
from harness.virtual_device import protocol as P
from harness.virtual_device.testing import AdbLab, find_adb

PROFILE = textwrap.dedent("""
    name = "vauth"
    marker = "vauth"
    platform = "android"
    [match]
    soc_model = ["SM6450"]
    [virtual]
    abi = "x86_64"
    [virtual.properties]
    "ro.soc.model" = "SM6450"
    "ro.product.model" = "SwapLab Virtual Auth"
""")



@pytest.fixture
def profile(tmp_path) -> str:
    p = tmp_path / "vauth.toml"
    p.write_text(PROFILE)
    return str(p)


def _other_key(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(65537, 2048)
    pub = tmp_path / "other_adbkey.pub"
    pub.write_text(adbauth.encode_public_key(key.public_key(), "someone@else") + "\n")
    return pub


def _state(lab: AdbLab, serial: str, want: str, timeout_s: float = 20) -> str:
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        out = lab.adb("devices").stdout.decode()
        rows = dict(line.split("\t")[:2] for line in out.splitlines()[1:] if "\t" in line)
        state = rows.get(serial, "")
        if state == want:
            return state
        time.sleep(0.2)
    return state


@pytest.mark.parametrize("adb", sorted(ADBS))
def test_unknown_key_is_refused_trusted_key_works(adb, tmp_path, profile):
    if ADBS[adb] is None:
        pytest.skip("no adb binary")
    with AdbLab(tmp_path / "lab", adb=ADBS[adb]) as lab:
        # a device that trusts another user's key only: this adb server is refused
        stranger = lab.virtual_device(profile, connect=False,
                                      trusted_keys=[_other_key(tmp_path)])
        lab.adb("connect", stranger.serial)
        assert _state(lab, stranger.serial, "unauthorized") == "unauthorized"
        r = lab.adb("-s", stranger.serial, "shell", "id")
        assert r.returncode != 0 and b"uid=" not in r.stdout
        assert b"unauthorized" in r.stderr
        assert any("refused adb key" in e for e in stranger.events)
        # a device that trusts this lab's key (the default of AdbLab): online, shell works
        trusted = lab.virtual_device(profile)
        assert _state(lab, trusted.serial, "device") == "device"
        r = lab.adb("-s", trusted.serial, "shell", "echo ok")
        assert r.returncode == 0 and r.stdout.strip() == b"ok"


class ScriptedHost:
    """A raw adb host on one TCP connection (the device side is what is tested)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, cmd: int, a0: int, a1: int, data: bytes = b"") -> None:
        self.sock.sendall(P.pack(cmd, a0, a1, data))

    def recv(self) -> tuple[int, int, int, bytes] | None:
        try:
            hdr = self._exactly(24)
        except TimeoutError:
            return None
        cmd, a0, a1, n = P.unpack_header(hdr)
        return cmd, a0, a1, self._exactly(n) if n else b""

    def _exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf


def test_auth_handshake_as_adbd_does_it(tmp_path, profile):
    from harness.virtual_device.launch import make_device

    good = rsa.generate_private_key(65537, 2048)
    bad = rsa.generate_private_key(65537, 2048)
    keys = tmp_path / "adb_keys"
    keys.write_text(adbauth.encode_public_key(good.public_key(), "me@host") + "\n")
    roots = Path(tempfile.mkdtemp(prefix="swaplab-vdevs-"))
    roots.chmod(0o711)  # device programs run as another account
    dev = make_device(profile, 0, None, [], roots / "root", trusted_keys=[keys])
    dev.start_in_thread()
    try:
        host = ScriptedHost(dev.port)
        host.send(P.A_OPEN, 1, 0, b"shell:id\0")  # before CNXN/AUTH: dropped
        host.send(P.A_CNXN, P.A_VERSION, P.MAX_PAYLOAD, b"host::\0")
        cmd, a0, _, token = host.recv()
        assert (cmd, a0, len(token)) == (P.A_AUTH, adbauth.AUTH_TOKEN, 20)
        # a signature by an untrusted key: a fresh token, not CNXN
        host.send(P.A_AUTH, adbauth.AUTH_SIGNATURE, 0, adbauth.sign_token(bad, token))
        cmd, a0, _, token2 = host.recv()
        assert (cmd, a0) == (P.A_AUTH, adbauth.AUTH_TOKEN) and token2 != token
        # an untrusted public key: silence (a phone would ask; nobody asks here)
        host.send(P.A_AUTH, adbauth.AUTH_RSAPUBLICKEY, 0,
                  adbauth.encode_public_key(bad.public_key(), "evil@host").encode() + b"\0")
        host.send(P.A_OPEN, 1, 0, b"shell:id\0")
        assert host.recv() is None
        # the old token signed by the good key is stale; the current one works
        host.send(P.A_AUTH, adbauth.AUTH_SIGNATURE, 0, adbauth.sign_token(good, token))
        cmd, a0, _, token3 = host.recv()
        assert (cmd, a0) == (P.A_AUTH, adbauth.AUTH_TOKEN)
        host.send(P.A_AUTH, adbauth.AUTH_SIGNATURE, 0, adbauth.sign_token(good, token3))
        cmd, _, _, banner = host.recv()
        assert cmd == P.A_CNXN and banner.startswith(b"device::")
        # a second host offering the trusted public key is accepted too
        other = ScriptedHost(dev.port)
        other.send(P.A_CNXN, P.A_VERSION, P.MAX_PAYLOAD, b"host::\0")
        assert other.recv()[0] == P.A_AUTH
        other.send(P.A_AUTH, adbauth.AUTH_RSAPUBLICKEY, 0,
                   adbauth.encode_public_key(good.public_key(), "me@host").encode() + b"\0")
        assert other.recv()[0] == P.A_CNXN
    finally:
        dev.stop()
        shutil.rmtree(roots, ignore_errors=True)


def test_public_key_format_and_trusted_keys_file_errors(tmp_path, monkeypatch):
    key = rsa.generate_private_key(65537, 2048)
    text = adbauth.encode_public_key(key.public_key(), "u@h")
    assert len(text.split()[0]) == 700 and text.endswith(" u@h")  # adbkey.pub's length
    assert adbauth.key_id(adbauth.decode_public_key(text)) == adbauth.key_id(key.public_key())
    bad = tmp_path / "keys"
    bad.write_text(text + "\nnot-a-key x@y\n")
    with pytest.raises(adbauth.AuthKeyError, match=r"keys:2: adb public key is not base64"):
        adbauth.TrustedKeys.from_files([bad])
    monkeypatch.setenv("ANDROID_USER_HOME", str(tmp_path / "dot-android"))
    assert adbauth.user_adb_key_path() == tmp_path / "dot-android" / "adbkey.pub"


PRIV_PROFILE = PROFILE.replace('"ro.product.model" = "SwapLab Virtual Auth"',
                               '"ro.product.model" = "SwapLab Virtual Auth"\n'
                               '"ro.product.device" = "dev$(touch @MARK@)`touch @MARK@`"')


def test_device_programs_run_unprivileged_and_profile_strings_are_not_code(tmp_path):
    """`adb shell id` is never uid 0; `$(...)` in ro.product.device (the prompt of an
    interactive shell) is not run; a link a device program makes does not let the
    device's file service (which runs as the starter) read or write outside."""
    import os
    import pty
    import select

    if find_adb() is None:
        pytest.skip("no adb binary")
    secret = tmp_path / "secret.txt"
    secret.write_text("root only")
    secret.chmod(0o600)
    with AdbLab(tmp_path / "lab") as lab:
        # where the profile's $(touch ...) would succeed whoever runs it
        open_dir = lab.device_roots() / "open"
        open_dir.mkdir()
        open_dir.chmod(0o777)
        mark = open_dir / "pwned"
        profile = tmp_path / "vpriv.toml"
        profile.write_text(PRIV_PROFILE.replace("@MARK@", str(mark)))
        vd = lab.virtual_device(str(profile))
        s = lambda *a, **k: lab.adb("-s", vd.serial, *a, **k)
        r = s("shell", "id -u")
        assert r.returncode == 0 and r.stdout.strip() != b"", r.stderr
        if os.geteuid() == 0:
            assert int(r.stdout.strip()) != 0, "device programs run as root"
            assert int(r.stdout.strip()) == vd.account.uid
        else:
            assert int(r.stdout.strip()) == os.geteuid()
        # a program on the device can write its own folders, not the host's root files
        assert s("shell", "echo x > /data/local/tmp/f && cat /data/local/tmp/f").stdout == b"x\n"
        # a link out of the sandbox: pull and push through it are refused
        assert s("shell", f"ln -s {secret} /data/local/tmp/link").returncode == 0
        s("pull", "/data/local/tmp/link", str(tmp_path / "got"))
        got = tmp_path / "got"
        pulled = [got] if got.is_file() else list(got.rglob("*")) if got.exists() else []
        assert not any(p.is_file() and "root only" in p.read_text() for p in pulled)
        with pytest.raises(Exception, match="Permission denied"):  # RECV itself, no STAT
            lab.client().device(vd.serial).sync.pull("/data/local/tmp/link", tmp_path / "got2")
        assert "root only" not in ((tmp_path / "got2").read_text()
                                   if (tmp_path / "got2").is_file() else "")
        assert s("shell", f"ln -s {tmp_path} /data/local/tmp/dirlink").returncode == 0
        payload = tmp_path / "payload"
        payload.write_text("evil")
        r = s("push", str(payload), "/data/local/tmp/dirlink/planted")
        assert r.returncode != 0 and not (tmp_path / "planted").exists()
        # an interactive shell (pty) shows the prompt; the profile's $(...) is not run
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(lab.adb_path, [lab.adb_path, "-P", str(lab.port), "-s", vd.serial,
                                     "shell"], lab.env)
        out = b""
        deadline = time.monotonic() + 3
        sent = False
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
            if b":/ $ " in out and not sent:
                os.write(fd, b"exit 0\n")
                sent = True
        os.waitpid(pid, 0)
        os.close(fd)
        assert b"dev__touch_" in out, out  # the name, made plain
        assert not mark.exists(), "a profile string was run by the shell"


def test_a_root_nobody_can_enter_is_a_clear_error(tmp_path, profile, capsys):
    import os

    from harness.virtual_device.launch import main as vdev_main

    if os.geteuid() != 0:
        pytest.skip("only root drops device programs to another account")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert vdev_main(["start", "--profile", profile, "--root", str(private / "root")]) == 2
    err = capsys.readouterr().err
    assert f"virtual device root {private / 'root'}: " in err
    assert "(mode 700) does not let 'nobody' (who device programs run as) through" in err
