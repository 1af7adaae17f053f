"""Wire framing shared by the virtual iPhone's services (blocking sockets).

usbmuxd: little-endian header (u32 total length incl. header, u32 version, u32 message,
u32 tag) + XML plist. lockdownd and the plist services: u32 big-endian length + plist
(XML or binary; replies are XML like lockdownd's)."""

from __future__ import annotations

import plistlib
import socket
import struct

USBMUX_HEADER = struct.Struct("<IIII")
USBMUX_PLIST_VERSION = 1
USBMUX_MSG_PLIST = 8
#: largest plist message a service accepts (a pair record or app list is far smaller)
MAX_PLIST_BYTES = 16 << 20


class PeerClosed(ConnectionError):
    """The other side closed the connection."""


def recv_exact(sock, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise PeerClosed(f"peer closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_usbmux(sock) -> tuple[int, int, int, dict | None]:
    """(version, message, tag, plist or None) of one usbmuxd request."""
    length, version, message, tag = USBMUX_HEADER.unpack(recv_exact(sock, USBMUX_HEADER.size))
    if length < USBMUX_HEADER.size or length > MAX_PLIST_BYTES:
        raise ValueError(f"bad usbmuxd packet length {length}")
    body = recv_exact(sock, length - USBMUX_HEADER.size)
    if message != USBMUX_MSG_PLIST:
        return version, message, tag, None
    return version, message, tag, plistlib.loads(body)


def send_usbmux(sock, tag: int, payload: dict) -> None:
    body = plistlib.dumps(payload)
    sock.sendall(USBMUX_HEADER.pack(USBMUX_HEADER.size + len(body), USBMUX_PLIST_VERSION,
                                    USBMUX_MSG_PLIST, tag) + body)


def recv_plist(sock) -> dict:
    (n,) = struct.unpack(">I", recv_exact(sock, 4))
    if n > MAX_PLIST_BYTES:
        raise ValueError(f"plist message of {n} bytes is too large")
    obj = plistlib.loads(recv_exact(sock, n))
    if not isinstance(obj, dict):
        raise ValueError("expected a plist dictionary")  # noqa: TRY004 - bad input from the peer
    return obj


def send_plist(sock, obj: dict) -> None:
    body = plistlib.dumps(obj)
    sock.sendall(struct.pack(">I", len(body)) + body)


def close_quietly(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
