"""Test support: a private adb server (own port, own HOME) plus virtual devices.

Never touches a user's adb: the server runs on a free port (never 5037) with HOME in a
temporary folder and is killed at the end (`adb -P PORT kill-server`).

    with AdbLab(tmp_path) as lab:
        vdev = lab.virtual_device("snapdragon6")
        client = lab.client()               # adbutils.AdbClient on the private server
        lab.adb("-s", vdev.serial, "shell", "getprop")
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from harness.devices.android.device import make_client

from .launch import make_device
from .server import VirtualDevice


def find_adb(prefer: str | None = None) -> str | None:
    """The adb binary: $SWAPLAB_ADB, else adbutils' bundled one, else `adb` on PATH."""
    cands = []
    if prefer:
        cands.append(prefer)
    if os.environ.get("SWAPLAB_ADB"):
        cands.append(os.environ["SWAPLAB_ADB"])
    try:
        import adbutils  # lazy: adbutils' bundled adb is only a fallback

        cands.append(str(Path(adbutils.__file__).parent / "binaries" / "adb"))
    except ImportError:
        pass
    cands.append(shutil.which("adb") or "")
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 5037:
            return port


class AdbLab:
    def __init__(self, tmp: Path, adb: str | None = None):
        self.tmp = Path(tmp)
        self.adb_path = find_adb(adb)
        if self.adb_path is None:
            raise RuntimeError("no adb binary found (adbutils' bundled adb or Debian's adb)")
        self.port = free_port()
        self.home = self.tmp / "adb-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("ANDROID_SERIAL", "ADB_SERVER_SOCKET", "ANDROID_ADB_SERVER_PORT")}
        # the lab cache (runner builds) must not move with HOME
        self.env.setdefault("SWAPLAB_CACHE", os.environ.get("SWAPLAB_CACHE") or
                            os.path.join(os.path.expanduser("~"), ".cache", "swaplab"))
        self.env.update({"HOME": str(self.home), "ANDROID_ADB_SERVER_PORT": str(self.port),
                         "ANDROID_USER_HOME": str(self.home / ".android")})
        self.devices: list[VirtualDevice] = []
        self._device_roots: Path | None = None

    def device_roots(self) -> Path:
        """Where the devices' sandboxes go: a folder others may enter (not list), since
        device programs run as an unprivileged account (privileges.py) and pytest's
        tmp_path is private to its user."""
        if self._device_roots is None:
            self._device_roots = Path(tempfile.mkdtemp(prefix="swaplab-vdevs-"))
            self._device_roots.chmod(0o711)
        return self._device_roots

    # --- adb ----------------------------------------------------------------------
    def adb(self, *args: str, timeout: float = 60, input: bytes | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([self.adb_path, "-P", str(self.port), *args], env=self.env,
                              capture_output=True, timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              check=check)

    @property
    def adb_key_pub(self) -> Path:
        """The public key this lab's adb server signs with (adb makes it at start-server)."""
        return self.home / ".android" / "adbkey.pub"

    def start(self) -> AdbLab:
        r = self.adb("start-server", timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"adb start-server on port {self.port} failed: {r.stderr!r}")
        if not self.adb_key_pub.is_file():
            raise RuntimeError(f"adb start-server made no key {self.adb_key_pub}")
        return self

    def stop(self) -> None:
        for d in self.devices:
            d.stop()
        try:
            self.adb("kill-server", timeout=20)
        except subprocess.TimeoutExpired:
            pass
        if self._device_roots is not None:
            shutil.rmtree(self._device_roots, ignore_errors=True)

    def __enter__(self) -> AdbLab:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client(self):
        """adbutils client of the private server (never spawns a server of its own)."""

        return make_client("127.0.0.1", self.port, socket_timeout=60)

    def connect(self, serial: str, timeout: float = 20) -> None:
        r = self.adb("connect", serial, timeout=30)
        out = (r.stdout + r.stderr).decode(errors="replace")
        if "connected" not in out:
            raise RuntimeError(f"adb connect {serial} failed: {out}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.adb("-s", serial, "get-state", timeout=20)
            if st.stdout.strip() == b"device":
                return
            time.sleep(0.2)
        raise RuntimeError(f"{serial} did not reach state 'device' within {timeout} s")

    # --- virtual devices ----------------------------------------------------------
    def virtual_device(self, profile: str = "snapdragon6", faults=(), abi: str | None = None,
                       connect: bool = True, tick_s: float = 0.5, **kw) -> VirtualDevice:
        root = self.device_roots() / f"vdev{len(self.devices)}"
        # the device trusts this lab's adb server (its key, made at start-server)
        kw.setdefault("trusted_keys", [self.adb_key_pub])
        dev = make_device(profile, 0, abi, list(faults), root, tick_s=tick_s, **kw)
        dev.start_in_thread()
        self.devices.append(dev)
        if connect:
            self.connect(dev.serial)
        return dev
