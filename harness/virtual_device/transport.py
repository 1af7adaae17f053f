"""The adb transport of the virtual device: streams over one TCP connection (OPEN / OKAY /
WRTE / CLSE, one WRTE in flight per stream) and the connection loop that hands each OPEN
to the service its device names (VirtualDevice.service_for). Process-session helpers the
services share live here too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import adbauth
from . import protocol as P

log = logging.getLogger("swaplab.virtual_device")


# adbd slows down and then drops a host that keeps failing; a connection that failed this
# many signatures is closed
MAX_FAILED_SIGNATURES = 16


class StreamClosed(Exception):
    pass


class Stream:
    def __init__(self, conn: Connection, local_id: int, remote_id: int):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._okay = asyncio.Event()
        self._okay.set()
        self.closed = False
        self.on_remote_close: list[Callable[[], None]] = []

    async def write(self, data: bytes) -> None:
        mp = self.conn.max_payload
        for off in range(0, len(data), mp):
            await self._okay.wait()
            if self.closed:
                raise StreamClosed()
            self._okay.clear()
            await self.conn.send(P.A_WRTE, self.local_id, self.remote_id, data[off:off + mp])

    async def read(self) -> bytes | None:
        return await self.inbox.get()

    def feed(self, data: bytes) -> None:
        self.inbox.put_nowait(data)

    def okay(self) -> None:
        self._okay.set()

    def remote_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.inbox.put_nowait(None)
        self._okay.set()
        for cb in self.on_remote_close:
            with contextlib.suppress(Exception):
                cb()

    async def close(self) -> None:
        if self.closed:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._okay.wait(), 5)
        if self.closed:
            return
        self.closed = True
        self.conn.streams.pop(self.local_id, None)
        with contextlib.suppress(Exception):
            await self.conn.send(P.A_CLSE, self.local_id, self.remote_id)


class ByteReader:
    """Sync is a byte stream across WRTE boundaries."""

    def __init__(self, stream: Stream):
        self.stream = stream
        self.buf = bytearray()

    async def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = await self.stream.read()
            if chunk is None:
                raise EOFError()
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class Connection:
    def __init__(self, device: Any, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter):
        self.device = device
        self.reader = reader
        self.writer = writer
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.max_payload = P.MAX_PAYLOAD
        self.wlock = asyncio.Lock()
        self.procs: set[int] = set()  # session ids of shell processes
        self.tasks: set[asyncio.Task] = set()
        # adb authentication (adbauth.py): nothing but CNXN / AUTH until a trusted key signs
        self.authenticated = False
        self.token: bytes | None = None
        self.failed_signatures = 0

    async def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        async with self.wlock:
            bps = self.device.faults.slow_link_bps
            if bps:
                await asyncio.sleep((24 + len(data)) / bps)
            self.writer.write(P.pack(command, arg0, arg1, data))
            await self.writer.drain()

    async def run(self) -> None:
        try:
            while True:
                hdr = await self.reader.readexactly(24)
                cmd, a0, a1, n = P.unpack_header(hdr)
                data = await self.reader.readexactly(n) if n else b""
                bps = self.device.faults.slow_link_bps
                if bps:
                    await asyncio.sleep((24 + n) / bps)
                await self.dispatch(cmd, a0, a1, data)
        except (asyncio.IncompleteReadError, ConnectionError, P.ProtocolError, OSError) as e:
            log.debug("connection ended: %r", e)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for s in list(self.streams.values()):
            s.remote_closed()
        self.streams.clear()
        for sid in list(self.procs):
            kill_session(sid)
        for t in list(self.tasks):
            t.cancel()
        with contextlib.suppress(Exception):
            self.writer.transport.abort()
        self.device.connections.discard(self)

    async def _send_token(self) -> None:
        self.token = adbauth.new_token()
        await self.send(P.A_AUTH, adbauth.AUTH_TOKEN, 0, self.token)

    async def _authenticated(self, how: str) -> None:
        self.authenticated = True
        self.token = None
        log.info("adb host authenticated (%s)", how)
        await self.send(P.A_CNXN, P.A_VERSION, P.MAX_PAYLOAD, self.device.banner())

    async def _auth(self, kind: int, data: bytes) -> None:
        """AUTH from the host, as adbd answers it (see adbauth.py)."""
        trusted = self.device.trusted_keys
        if kind == adbauth.AUTH_SIGNATURE and self.token is not None:
            if trusted.verify(self.token, data):
                await self._authenticated("signature")
                return
            self.failed_signatures += 1
            if self.failed_signatures > MAX_FAILED_SIGNATURES:
                raise P.ProtocolError("too many failed AUTH signatures")
            await self._send_token()  # the host tries its next key
        elif kind == adbauth.AUTH_RSAPUBLICKEY and self.token is not None:
            try:
                key = adbauth.decode_public_key(data)
            except adbauth.AuthKeyError as e:
                log.warning("refused adb host: %s", e)
                return
            if trusted.trusts(key):
                await self._authenticated("public key")
                return
            # a phone would ask its user; nobody is asked here: the host stays unauthorized
            comment = data.rstrip(b"\0").decode("ascii", "replace").partition(" ")[2]
            self.device.events.append(f"refused adb key of {comment[:80]!r}")
            log.warning("refused adb host key %r: not a trusted key", comment[:80])

    async def dispatch(self, cmd: int, a0: int, a1: int, data: bytes) -> None:
        if cmd == P.A_CNXN:
            if a1:
                self.max_payload = min(a1, P.MAX_PAYLOAD)
            for s in list(self.streams.values()):
                s.remote_closed()
            self.streams.clear()
            if self.authenticated:
                await self.send(P.A_CNXN, P.A_VERSION, P.MAX_PAYLOAD, self.device.banner())
            else:
                await self._send_token()
        elif cmd == P.A_AUTH:
            if not self.authenticated:
                await self._auth(a0, data)
        elif not self.authenticated:
            log.debug("dropped %s before authentication", P.NAMES.get(cmd, hex(cmd)))
        elif cmd == P.A_OPEN:
            service = data.rstrip(b"\0").decode("utf-8", "replace")
            handler = self.device.service_for(service)
            if handler is None:
                log.info("refused service %r", service)
                await self.send(P.A_CLSE, 0, a0)
                return
            local = self.next_id
            self.next_id += 1
            stream = Stream(self, local, a0)
            self.streams[local] = stream
            await self.send(P.A_OKAY, local, a0)
            task = asyncio.ensure_future(self._run_service(handler, stream))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif cmd == P.A_WRTE:
            stream = self.streams.get(a1)
            if stream is None:
                await self.send(P.A_CLSE, 0, a0)
                return
            stream.feed(data)
            await self.send(P.A_OKAY, a1, a0)
        elif cmd == P.A_OKAY:
            stream = self.streams.get(a1)
            if stream is not None:
                stream.remote_id = a0
                stream.okay()
        elif cmd == P.A_CLSE:
            stream = self.streams.pop(a1, None)
            if stream is not None:
                stream.remote_closed()
        # STLS / SYNC from the host: ignored (we never offer TLS)

    async def _run_service(self, handler, stream: Stream) -> None:
        try:
            await handler(self, stream)
        except StreamClosed:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("service failed")
        finally:
            with contextlib.suppress(Exception):
                await stream.close()


def kill_session(sid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, sig)


def session_pids(sid: int, pattern: str | None = None) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/stat").read_bytes()
            if int(raw[raw.rfind(b")") + 2:].split()[3]) != sid:
                continue
            if pattern is not None:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ")
                if pattern.encode() not in cmdline or cmdline.startswith(b"/bin/sh -c"):
                    continue
        except (OSError, ValueError, IndexError):
            continue
        out.append(int(name))
    return out


def exit_status(rc: int) -> int:
    return (128 - rc) & 0xFF if rc < 0 else rc & 0xFF


