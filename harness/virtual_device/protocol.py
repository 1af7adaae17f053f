"""The adb transport wire format (device side), as documented in AOSP
`packages/modules/adb/protocol.txt`.

Every message is a 24-byte little-endian header followed by `data_length` bytes:

    command, arg0, arg1, data_length, data_crc32, magic (= command ^ 0xffffffff)

With version >= 0x01000001 (A_VERSION_SKIP_CHECKSUM) the checksum may be 0; we send 0
and do not check the host's.
"""

from __future__ import annotations

import struct

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
A_STLS = 0x534C5453

A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024

HEADER = struct.Struct("<6I")

NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_OPEN: "OPEN", A_OKAY: "OKAY",
         A_CLSE: "CLSE", A_WRTE: "WRTE", A_AUTH: "AUTH", A_STLS: "STLS"}


class ProtocolError(Exception):
    pass


def pack(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    return HEADER.pack(command, arg0 & 0xFFFFFFFF, arg1 & 0xFFFFFFFF, len(data), 0,
                       command ^ 0xFFFFFFFF) + data


def unpack_header(raw: bytes) -> tuple[int, int, int, int]:
    """Returns (command, arg0, arg1, data_length); raises ProtocolError on bad magic."""
    command, arg0, arg1, length, _crc, magic = HEADER.unpack(raw)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic in header {raw.hex()}")
    if command not in NAMES:
        raise ProtocolError(f"unknown command 0x{command:08x}")
    return command, arg0, arg1, length


# --- shell protocol v2: [u8 id][u32 LE length][data] ----------------------------
SHELL_STDIN = 0
SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3
SHELL_CLOSE_STDIN = 4
SHELL_WINDOW_SIZE = 5


def shell_packet(kind: int, data: bytes) -> bytes:
    return struct.pack("<BI", kind, len(data)) + data


# --- sync protocol (v1) ------------------------------------------------------------
SYNC_DATA_MAX = 64 * 1024
