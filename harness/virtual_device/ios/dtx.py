"""DTX, the message protocol of the DVT instruments server, device side (our own codec;
NSKeyedArchiver values through bpylist2).

Fragment header (32 bytes, little endian): magic 0x1F3D5B79, header size, fragment index,
fragment count, data size, message identifier, conversation index, channel code, flags
(1 = expects reply). A message: 16-byte payload header (type u8, 3 reserved bytes, aux size
u32, aux+payload size u32, flags u32), the aux (a primitive dictionary of positional
arguments: u32 0x1F0, u32 0, u64 body length, then [null key, value] pairs; values: 1 string,
2 buffer (an NSKeyedArchive), 3 int32, 6 int64, 9 double, 10 null), then the payload (an
NSKeyedArchive: the selector of a DISPATCH, the object of a reply or notification).

Channel codes on the wire: a reply carries the request's code; a message the device starts on
a channel the host opened carries the negated code."""

from __future__ import annotations

import plistlib
import struct
import threading

from bpylist2 import archiver

from .framing import recv_exact

MAGIC = 0x1F3D5B79
FRAGMENT = struct.Struct("<IIHHIIIiI")
PAYLOAD = struct.Struct("<BBBBIII")
T_OK, T_DATA, T_DISPATCH, T_OBJECT, T_ERROR = 0, 1, 2, 3, 4
EXPECTS_REPLY = 1
MAX_MESSAGE = 32 << 20


class DtxMessage:
    def __init__(self, mtype: int, identifier: int, conversation: int, channel: int, flags: int,
                 aux: list, payload: bytes):
        self.type, self.identifier, self.conversation = mtype, identifier, conversation
        self.channel, self.flags, self.aux, self.payload = channel, flags, aux, payload

    @property
    def expects_reply(self) -> bool:
        return bool(self.flags & EXPECTS_REPLY)

    def selector(self) -> str | None:
        if self.type != T_DISPATCH or not self.payload:
            return None
        value = archiver.unarchive(self.payload)
        return value if isinstance(value, str) else None


# --- aux (positional arguments) ---------------------------------------------------
def parse_aux(data: bytes) -> list:
    if not data:
        return []
    magic, _unknown, body_len = struct.unpack_from("<IIQ", data)
    if magic & 0xFF != 0xF0:
        raise ValueError(f"aux: expected a primitive dictionary, type {magic:#x}")
    pos, end, args = 16, 16 + body_len, []
    while pos < end:
        for is_key in (True, False):
            (t,) = struct.unpack_from("<I", data, pos)
            pos += 4
            t &= 0xFF
            if t == 10:
                value = None
            elif t in (1, 2):
                (n,) = struct.unpack_from("<I", data, pos)
                raw = data[pos + 4:pos + 4 + n]
                pos += 4 + n
                if t == 1:
                    value = raw.decode("utf-8", "replace")
                else:
                    value = archiver.unarchive(raw) if raw else None
            elif t == 3:
                (value,) = struct.unpack_from("<i", data, pos)
                pos += 4
            elif t == 6:
                (value,) = struct.unpack_from("<q", data, pos)
                pos += 8
            elif t == 9:
                (value,) = struct.unpack_from("<d", data, pos)
                pos += 8
            else:
                raise ValueError(f"aux: unknown primitive type {t}")
            if not is_key:
                args.append(value)
    return args


def build_aux(args: list) -> bytes:
    if not args:
        return b""
    body = bytearray()
    for a in args:
        body += struct.pack("<I", 10)
        blob = archiver.archive(a)
        body += struct.pack("<II", 2, len(blob)) + blob
    return struct.pack("<IIQ", 0x1F0, 0, len(body)) + bytes(body)


def archive_nserror(message: str, code: int = 1, domain: str = "DTXMessage") -> bytes:
    """An NSKeyedArchive of an NSError (bpylist2 has no NSError class of its own)."""
    uid = plistlib.UID
    objects = ["$null",
               {"NSCode": code, "NSDomain": uid(2), "NSUserInfo": uid(3), "$class": uid(6)},
               domain,
               {"NS.keys": [uid(4)], "NS.objects": [uid(5)], "$class": uid(7)},
               "NSLocalizedDescription", message,
               {"$classname": "NSError", "$classes": ["NSError", "NSObject"]},
               {"$classname": "NSDictionary", "$classes": ["NSDictionary", "NSObject"]}]
    return plistlib.dumps({"$version": 100000, "$archiver": "NSKeyedArchiver",
                           "$top": {"root": uid(1)}, "$objects": objects},
                          fmt=plistlib.FMT_BINARY)


# --- connection ---------------------------------------------------------------------
class DtxConnection:
    """Reads whole messages; sends single-fragment messages (thread-safe)."""

    def __init__(self, sock):
        self.sock = sock
        self._send_lock = threading.Lock()
        self._next_id = 1
        self._partial: dict[int, tuple[int, bytearray]] = {}

    def read(self) -> DtxMessage:
        while True:
            (magic, header_size, index, count, data_size, identifier, conversation, channel,
             flags) = FRAGMENT.unpack(recv_exact(self.sock, FRAGMENT.size))
            if magic != MAGIC or data_size > MAX_MESSAGE or index >= count:
                raise ValueError("not a DTX fragment")
            if header_size > FRAGMENT.size:
                recv_exact(self.sock, header_size - FRAGMENT.size)
            if count > 1 and index == 0:
                self._partial[identifier] = (data_size, bytearray())
                continue
            body = recv_exact(self.sock, data_size)
            if count > 1:
                _total, buf = self._partial[identifier]
                buf += body
                if index < count - 1:
                    continue
                del self._partial[identifier]
                body = bytes(buf)
            mtype, _a, _b, _r, aux_size, total_size, _flags = PAYLOAD.unpack_from(body)
            aux = parse_aux(body[PAYLOAD.size:PAYLOAD.size + aux_size])
            payload = body[PAYLOAD.size + aux_size:PAYLOAD.size + total_size]
            return DtxMessage(mtype, identifier, conversation, channel, flags, aux, payload)

    def send(self, mtype: int, channel: int, *, payload: bytes = b"", aux: bytes = b"",
             identifier: int | None = None, conversation: int = 0, expects_reply: bool = False
             ) -> None:
        with self._send_lock:
            if identifier is None:
                identifier = self._next_id
                self._next_id += 1
            body = PAYLOAD.pack(mtype, 0, 0, 0, len(aux), len(aux) + len(payload), 0) + aux + payload
            head = FRAGMENT.pack(MAGIC, FRAGMENT.size, 0, 1, len(body), identifier, conversation,
                                 channel, EXPECTS_REPLY if expects_reply else 0)
            self.sock.sendall(head + body)

    # replies to a host request on the host's channel code
    def reply(self, req: DtxMessage, value=None) -> None:
        if not req.expects_reply:
            return
        if value is None:
            self.send(T_OK, req.channel, identifier=req.identifier,
                      conversation=req.conversation + 1)
        else:
            self.send(T_OBJECT, req.channel, payload=archiver.archive(value),
                      identifier=req.identifier, conversation=req.conversation + 1)

    def reply_error(self, req: DtxMessage, message: str) -> None:
        if req.expects_reply:
            self.send(T_ERROR, req.channel, payload=archive_nserror(message),
                      identifier=req.identifier, conversation=req.conversation + 1)

    def notify(self, channel: int, value) -> None:
        """An object the device sends on its own on a host-opened channel."""
        self.send(T_OBJECT, -channel, payload=archiver.archive(value))

    def dispatch(self, channel: int, selector: str, args: list) -> None:
        self.send(T_DISPATCH, -channel, payload=archiver.archive(selector), aux=build_aux(args))
