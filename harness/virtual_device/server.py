"""The device side of the adb transport over TCP (what adbd does), for SwapLab's virtual
Android device. The real adb binary (`adb connect 127.0.0.1:PORT`) and adbutils talk to it
unchanged.

Implemented (and advertised in the CNXN banner, nothing else):
  * CNXN -> AUTH TOKEN; CNXN once a trusted RSA key signs it or is offered (adbauth.py);
    version 0x01000001, zero checksums, max payload 256 KiB
  * OPEN / OKAY / WRTE / CLSE streams; one WRTE in flight per stream until its OKAY
    (no `delayed_ack`)
  * services: `shell:CMD` (v1: stdout+stderr merged, no exit code), `shell,v2,...:CMD`
    (feature `shell_v2`: [u8 id][u32 LE len][data] packets, real exit code, separate
    stderr, stdin + close-stdin, window size ignored; `pty` gives a pseudo-terminal),
    `exec:CMD` (raw, like v1), `sync:` (v1 STAT/LIST/SEND/RECV/DATA/DONE/OKAY/FAIL/QUIT
    as a byte stream across WRTE boundaries; parents of pushed files are created, hence
    `fixed_push_mkdir`)
  * everything else is refused with CLSE (adb prints "error: closed")
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import platform
import pty
import struct
import termios
import threading
from pathlib import Path

from harness.devices.base import CPU_EMULATION_PROPERTY

from . import protocol as P
from .adbauth import TrustedKeys, trusted_keys_for
from .faults import Faults, schedule_faults
from .privileges import device_account, hand_over, inside, make_folders, prepare_root, prompt
from .sandbox import Sandbox
from .simulation import SensorSimulation
from .transport import (
    ByteReader,
    Connection,
    Stream,
    StreamClosed,
    exit_status,
    kill_session,
)

log = logging.getLogger("swaplab.virtual_device")

FEATURES = ("shell_v2", "fixed_push_mkdir")


class VirtualDevice:
    """One virtual Android device listening on 127.0.0.1:port."""

    def __init__(self, root: Path, properties: dict[str, str], abi: str = "x86_64",
                 port: int = 0, host: str = "127.0.0.1", faults: Faults | None = None,
                 sim_config: dict | None = None, tick_s: float = 0.5,
                 trusted_keys: TrustedKeys | list[Path | str] | None = None):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the virtual device only listens on the loopback interface")
        self.trusted_keys = trusted_keys_for(trusted_keys)
        self.faults = faults or Faults()
        props = dict(properties)
        props.setdefault("ro.product.cpu.abi", abi)
        props["ro.product.cpu.abi"] = abi
        props.setdefault("ro.product.cpu.abilist", abi)
        props["ro.swaplab.virtual"] = "1"
        if abi == "arm64-v8a":  # the sandbox runs its programs under qemu-aarch64 (sandbox.py)
            props[CPU_EMULATION_PROPERTY] = f"qemu-aarch64 on {platform.machine()}"
        else:
            props.pop(CPU_EMULATION_PROPERTY, None)
        props.setdefault("ro.product.name", "swaplab_virtual")
        props.setdefault("ro.product.device", "swaplab_virtual")
        props.setdefault("ro.product.model", "SwapLab Virtual Device")
        props.setdefault("ro.build.version.sdk", "34")
        props.setdefault("ro.debuggable", "1")
        self.properties = props
        self.abi = abi
        self.host = host
        self.port = port
        self.sandbox = Sandbox(Path(root), props, abi)
        self.sandbox.setup()
        self.account = device_account()  # device programs never run as root
        prepare_root(self.sandbox.root, self.account)
        f = self.faults
        self.sim = SensorSimulation(self.sandbox.root, sim_config, hot_c=f.hot_c,
                                    battery_pct=f.battery_pct, charging=f.charging,
                                    unreadable=f.unreadable_sensors, tick_s=tick_s)
        self.connections: set[Connection] = set()
        self.gone = False
        self.events: list[str] = []
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- identity ----------------------------------------------------------------
    def banner(self) -> bytes:
        p = self.properties
        return ("device::ro.product.name={};ro.product.model={};ro.product.device={};"
                "features={}".format(p["ro.product.name"], p["ro.product.model"],
                                     p["ro.product.device"], ",".join(FEATURES))).encode()

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- services ----------------------------------------------------------------
    def service_for(self, service: str):
        if service.startswith("shell"):
            head, sep, command = service.partition(":")
            if not sep:
                return None
            args = head.split(",")[1:]
            v2 = "v2" in args
            if v2 and "shell_v2" not in FEATURES:
                return None
            use_pty = "pty" in args or (not command and "raw" not in args)
            return lambda c, s: self._shell(c, s, command, v2, use_pty)
        if service.startswith("exec:"):
            command = service[5:]
            return lambda c, s: self._shell(c, s, command, False, False)
        if service.startswith("sync:"):
            return self._sync
        return None

    async def _shell(self, conn: Connection, stream: Stream, command: str, v2: bool,
                     use_pty: bool) -> None:
        sb = self.sandbox
        argv = ["/bin/sh", "-c", sb.translate_command(command)] if command else ["/bin/sh", "-i"]
        master = None
        drop = self.account.spawn_kwargs() if self.account else {}
        if use_pty:
            master, slave = pty.openpty()
            if self.account:  # the shell owns its terminal
                os.fchown(slave, self.account.uid, -1)
            env = dict(sb.env(), PS1=prompt(self.properties.get("ro.product.device", "")),
                       TERM="xterm")

            def controlling_tty() -> None:  # runs in the child after setsid()
                with contextlib.suppress(OSError):
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)

            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=slave, stdout=slave, stderr=slave, cwd=str(sb.root),
                env=env, start_new_session=True, preexec_fn=controlling_tty, **drop)
            os.close(slave)
        else:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE if v2 else asyncio.subprocess.STDOUT,
                cwd=str(sb.root), env=sb.env(), start_new_session=True, **drop)
        sid = proc.pid
        conn.procs.add(sid)
        self.sim.track_session(sid)
        schedule_faults(self, sid, command)
        def killer() -> None:
            kill_session(sid)

        stream.on_remote_close.append(killer)
        loop = asyncio.get_running_loop()

        async def emit(kind: int, chunk: bytes) -> None:
            chunk = sb.untranslate_output(chunk)
            await stream.write(P.shell_packet(kind, chunk) if v2 else chunk)

        async def pump(reader, kind: int) -> None:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                await emit(kind, chunk)

        async def pump_pty() -> None:
            while True:
                try:
                    chunk = await loop.run_in_executor(None, os.read, master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                await emit(P.SHELL_STDOUT, chunk)

        def to_stdin(data: bytes) -> None:
            if master is not None:
                with contextlib.suppress(OSError):
                    os.write(master, data)
            elif proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.write(data)

        def close_stdin() -> None:
            if master is not None:
                with contextlib.suppress(OSError):
                    os.write(master, b"\x04")
            elif proc.stdin is not None:
                proc.stdin.close()

        async def feed() -> None:
            buf = bytearray()
            while True:
                data = await stream.read()
                if data is None:
                    return
                if not v2:
                    to_stdin(data)
                    continue
                buf += data
                while len(buf) >= 5:
                    kind, n = struct.unpack_from("<BI", buf)
                    if len(buf) < 5 + n:
                        break
                    payload = bytes(buf[5:5 + n])
                    del buf[:5 + n]
                    if kind == P.SHELL_STDIN:
                        to_stdin(payload)
                    elif kind == P.SHELL_CLOSE_STDIN:
                        close_stdin()
                    # SHELL_WINDOW_SIZE and others: ignored

        feeder = asyncio.ensure_future(feed())
        try:
            if master is not None:
                await pump_pty()
            else:
                pumps = [pump(proc.stdout, P.SHELL_STDOUT)]
                if v2:
                    pumps.append(pump(proc.stderr, P.SHELL_STDERR))
                await asyncio.gather(*pumps)
            rc = await proc.wait()
            # the command is done: what it left in the background must survive the stream
            stream.on_remote_close.remove(killer)
            if v2:
                await stream.write(P.shell_packet(P.SHELL_EXIT, bytes([exit_status(rc)])))
        except StreamClosed:
            kill_session(sid)
            raise
        finally:
            feeder.cancel()
            conn.procs.discard(sid)
            if master is not None:
                with contextlib.suppress(OSError):
                    os.close(master)
            if proc.returncode is None:
                kill_session(sid)
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(proc.wait(), 5)
            # close the transport while the loop lives (else its __del__ fails later)
            with contextlib.suppress(Exception):
                proc._transport.close()

    # --- sync --------------------------------------------------------------------
    async def _sync(self, conn: Connection, stream: Stream) -> None:
        rd = ByteReader(stream)
        while True:
            try:
                hdr = await rd.read(8)
            except EOFError:
                return
            cid, n = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"QUIT":
                return
            if n > 4096:
                await self._sync_fail(stream, "path too long")
                return
            try:
                path = (await rd.read(n)).decode("utf-8", "surrogateescape")
            except EOFError:
                return
            if cid == b"STAT":
                await self._sync_stat(stream, path)
            elif cid == b"LIST":
                await self._sync_list(stream, path)
            elif cid == b"RECV":
                await self._sync_recv(stream, path)
            elif cid == b"SEND":
                if not await self._sync_send(stream, rd, path):
                    return
            else:
                await self._sync_fail(stream, f"unknown sync command {cid!r}")
                return

    async def _sync_fail(self, stream: Stream, msg: str) -> None:
        b = msg.encode()
        await stream.write(b"FAIL" + struct.pack("<I", len(b)) + b)

    async def _sync_stat(self, stream: Stream, path: str) -> None:
        try:
            st = os.lstat(self.sandbox.to_host(path))
            vals = (st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))
        except OSError:
            vals = (0, 0, 0)
        await stream.write(b"STAT" + struct.pack("<III", *vals))

    async def _sync_list(self, stream: Stream, path: str) -> None:
        host = self.sandbox.to_host(path)
        out = bytearray()
        try:
            if not inside(self.sandbox.root, host):
                raise PermissionError(13, "Permission denied")
            names = [".", ".."] + sorted(os.listdir(host))
        except OSError:
            names = []
        for name in names:
            try:
                st = os.lstat(host / name)
            except OSError:
                continue
            nb = name.encode("utf-8", "surrogateescape")
            out += b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF,
                                         int(st.st_mtime), len(nb)) + nb
        out += b"DONE" + struct.pack("<IIII", 0, 0, 0, 0)
        await stream.write(bytes(out))

    async def _sync_recv(self, stream: Stream, path: str) -> None:
        host = self.sandbox.to_host(path)
        try:
            if not inside(self.sandbox.root, host):  # a link a device program made
                raise PermissionError(13, "Permission denied")
            f = open(host, "rb")  # noqa: SIM115, ASYNC230 - small sandbox files
        except OSError as e:
            await self._sync_fail(stream, f"open failed: {e.strerror}")
            return
        with f:
            while True:
                try:
                    chunk = f.read(P.SYNC_DATA_MAX)
                except OSError as e:
                    await self._sync_fail(stream, f"read failed: {e.strerror}")
                    return
                if not chunk:
                    break
                await stream.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        await stream.write(b"DONE" + struct.pack("<I", 0))

    async def _sync_send(self, stream: Stream, rd: ByteReader, spec: str) -> bool:
        path, comma, mode_s = spec.rpartition(",")
        if not comma:
            path, mode_s = spec, "33188"
        try:
            mode = int(mode_s)
        except ValueError:
            mode = 0o100644
        host = self.sandbox.to_host(path)
        error = ""
        tmp = host.with_name(f".{host.name}.swaplab-tmp")
        f = None
        try:
            make_folders(host.parent, self.sandbox.root, self.account)
            if not inside(self.sandbox.root, host.parent) or (
                    host.is_symlink() and not inside(self.sandbox.root, host)):
                raise PermissionError(13, "Permission denied")
            if host.is_dir():
                raise IsADirectoryError(21, "Is a directory")
            f = open(tmp, "wb")  # noqa: SIM115, ASYNC230
        except OSError as e:
            error = f"couldn't create file: {e.strerror}"
        limit = self.faults.full_storage_bytes
        used = self.sandbox.data_usage() if limit is not None else 0
        written = 0
        mtime = 0
        try:
            while True:
                try:
                    hdr = await rd.read(8)
                except EOFError:
                    return False
                cid, n = hdr[:4], struct.unpack("<I", hdr[4:])[0]
                if cid == b"DONE":
                    mtime = n
                    break
                if cid != b"DATA":
                    error = error or f"invalid data message {cid!r}"
                    await self._sync_fail(stream, error)
                    return False
                try:
                    data = await rd.read(n)
                except EOFError:
                    return False
                if error:
                    continue
                if limit is not None and used + written + len(data) > limit:
                    error = "write failed: No space left on device"
                    continue
                try:
                    f.write(data)
                    written += len(data)
                except OSError as e:
                    error = f"write failed: {e.strerror}"
        finally:
            if f is not None:
                f.close()
        if error:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self.events.append(f"push of {path} failed: {error}")
            await self._sync_fail(stream, error)
            return True
        hand_over(tmp, self.account)
        os.chmod(tmp, mode & 0o777 or 0o644)  # never set-uid/gid, whoever pushes
        if mtime:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, host)
        await stream.write(b"OKAY" + struct.pack("<I", 0))
        return True

    # --- lifecycle ---------------------------------------------------------------
    async def _handle(self, reader, writer) -> None:
        if self.gone:
            writer.transport.abort()
            return
        conn = Connection(self, reader, writer)
        self.connections.add(conn)
        await conn.run()

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.sim.start()

    def drop_now(self) -> None:
        """Fault: the device is gone (cable pulled). Must run on the server loop."""
        self.gone = True
        self.events.append("connection dropped (fault)")
        log.warning("virtual device %s: dropping all connections (fault)", self.serial)
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.shutdown()

    def blip_now(self) -> None:
        """Fault: every connection cut, the device still listening. On the server loop."""
        self.events.append("connections cut (blip fault)")
        for conn in list(self.connections):
            conn.shutdown()

    def drop(self) -> None:
        """Thread-safe drop_now()."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.drop_now)

    # --- running in a background thread (tests, CLI) -------------------------------
    def start_in_thread(self) -> VirtualDevice:
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.serve())
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            for conn in list(self.connections):
                conn.shutdown()
            # let every cancelled service task finish (its cleanup awaits), so none is
            # garbage-collected later while still pending
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            loop.run_until_complete(asyncio.sleep(0.05))
            if pending:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(asyncio.wait(pending, timeout=2))
            # the loop is not closed: subprocess transports may still be collected later

        self._thread = threading.Thread(target=main, name="swaplab-vdev", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        self.sim.stop()
        loop = self._loop
        if loop is None:
            return

        def _stop() -> None:
            if self._server is not None:
                self._server.close()
            for conn in list(self.connections):
                conn.shutdown()
            loop.stop()

        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
