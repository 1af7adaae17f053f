"""The AFC server of the virtual iPhone (com.apple.afc on the media folder; house_arrest vends
an app container over the same protocol).

Packets: header "CFA6LPAA" + u64 entire_length, this_length, packet_num, operation (little
endian); the reply echoes packet_num with STATUS (u64 error), DATA or FILE_OPEN_RES. Paths are
absolute inside the vended folder; nothing outside it is reachable (`..` is clamped, symlinks
are never followed out). A storage budget (the full-storage fault) turns writes beyond it into
NO_SPACE_LEFT, as a full phone does."""

from __future__ import annotations

import os
import posixpath
import stat as st
import struct
from pathlib import Path

from .framing import PeerClosed, recv_exact

MAGIC = b"CFA6LPAA"
HEADER = struct.Struct("<8sQQQQ")
OP_STATUS, OP_DATA, OP_READ_DIR, OP_REMOVE_PATH, OP_MAKE_DIR = 1, 2, 3, 8, 9
OP_GET_FILE_INFO, OP_GET_DEVINFO, OP_FILE_OPEN, OP_FILE_OPEN_RES = 10, 11, 13, 14
OP_READ, OP_WRITE, OP_FILE_SEEK, OP_FILE_CLOSE, OP_RENAME_PATH = 15, 16, 17, 20, 24
OP_FILE_SET_SIZE, OP_FILE_TELL, OP_FILE_TELL_RES = 21, 18, 19
E_SUCCESS, E_UNKNOWN, E_INVALID_ARG, E_NOT_FOUND, E_IS_DIR = 0, 1, 7, 8, 9
E_PERM, E_NO_SPACE, E_DIR_NOT_EMPTY, E_NOT_SUPPORTED, E_IO = 10, 18, 33, 15, 20
#: fopen modes: (os flags, truncate)
MODES = {1: os.O_RDONLY, 2: os.O_RDWR | os.O_CREAT, 3: os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
         4: os.O_RDWR | os.O_CREAT | os.O_TRUNC, 5: os.O_WRONLY | os.O_APPEND | os.O_CREAT,
         6: os.O_RDWR | os.O_APPEND | os.O_CREAT}
MAX_READ = 8 << 20


class AfcError(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class Storage:
    """Bytes the device may still store (None: unlimited); shared by all AFC connections."""

    def __init__(self, free_bytes: int | None):
        self.free_bytes = free_bytes

    def take(self, n: int) -> None:
        if self.free_bytes is None:
            return
        if n > self.free_bytes:
            raise AfcError(E_NO_SPACE)
        self.free_bytes -= n


def _cstrings(data: bytes) -> list[str]:
    return [p.decode("utf-8", "replace") for p in data.split(b"\0")[:-1]]


class AfcServer:
    def __init__(self, root: Path, storage: Storage, model: str = "iPhone",
                 allowed_prefix: str = "/"):
        self.root = Path(root)
        self.storage = storage
        self.model = model
        self.allowed_prefix = allowed_prefix
        self.handles: dict[int, int] = {}
        self.next_handle = 1

    def host_path(self, device_path: str) -> Path:
        norm = posixpath.normpath("/" + device_path.lstrip("/"))
        if not (norm == self.allowed_prefix.rstrip("/") or norm.startswith(
                self.allowed_prefix.rstrip("/") + "/") or self.allowed_prefix == "/"):
            raise AfcError(E_PERM)
        p = self.root / norm.lstrip("/")
        real = os.path.realpath(p)
        if not (real == str(self.root.resolve()) or real.startswith(str(self.root.resolve()) + "/")):
            raise AfcError(E_PERM)
        return p

    # --- one connection ----------------------------------------------------------
    def serve(self, sock) -> None:
        try:
            while True:
                magic, entire, _this, num, op = HEADER.unpack(recv_exact(sock, HEADER.size))
                if magic != MAGIC or entire < HEADER.size or entire > HEADER.size + (64 << 20):
                    return
                data = recv_exact(sock, entire - HEADER.size)
                try:
                    rop, rdata = self.handle(op, data)
                except AfcError as e:
                    rop, rdata = OP_STATUS, struct.pack("<Q", e.code)
                except FileNotFoundError:
                    rop, rdata = OP_STATUS, struct.pack("<Q", E_NOT_FOUND)
                except IsADirectoryError:
                    rop, rdata = OP_STATUS, struct.pack("<Q", E_IS_DIR)
                except OSError as e:
                    code = E_NO_SPACE if e.errno == 28 else E_DIR_NOT_EMPTY if e.errno == 39 else E_IO
                    rop, rdata = OP_STATUS, struct.pack("<Q", code)
                n = HEADER.size + len(rdata)
                sock.sendall(HEADER.pack(MAGIC, n, n, num, rop) + rdata)
        except (PeerClosed, OSError):
            return
        finally:
            for fd in self.handles.values():
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.handles.clear()

    def handle(self, op: int, data: bytes) -> tuple[int, bytes]:
        ok = (OP_STATUS, struct.pack("<Q", E_SUCCESS))
        if op == OP_GET_FILE_INFO:
            p = self.host_path(_cstrings(data)[0])
            s = os.lstat(p)
            kind = "S_IFDIR" if st.S_ISDIR(s.st_mode) else "S_IFLNK" if st.S_ISLNK(s.st_mode) \
                else "S_IFREG"
            info = {"st_size": s.st_size, "st_blocks": s.st_blocks, "st_nlink": s.st_nlink,
                    "st_ifmt": kind, "st_mtime": s.st_mtime_ns, "st_birthtime": s.st_ctime_ns}
            return OP_DATA, b"".join(f"{k}\0{v}\0".encode() for k, v in info.items())
        if op == OP_READ_DIR:
            p = self.host_path(_cstrings(data)[0])
            if not p.is_dir():
                raise AfcError(E_NOT_FOUND if not p.exists() else E_INVALID_ARG)
            names = [".", ".."] + sorted(os.listdir(p))
            return OP_DATA, b"".join(n.encode() + b"\0" for n in names)
        if op == OP_MAKE_DIR:
            self.host_path(_cstrings(data)[0]).mkdir(parents=True, exist_ok=True)
            return ok
        if op == OP_REMOVE_PATH:
            p = self.host_path(_cstrings(data)[0])
            if p.is_dir() and not p.is_symlink():
                p.rmdir()
            else:
                size = p.stat().st_size if p.is_file() else 0
                p.unlink()
                if self.storage.free_bytes is not None:
                    self.storage.free_bytes += size
            return ok
        if op == OP_RENAME_PATH:
            src, dst = _cstrings(data)[:2]
            os.replace(self.host_path(src), self.host_path(dst))
            return ok
        if op == OP_FILE_OPEN:
            (mode,) = struct.unpack_from("<Q", data)
            p = self.host_path(_cstrings(data[8:])[0])
            if mode not in MODES:
                raise AfcError(E_INVALID_ARG)
            if p.is_dir():
                raise AfcError(E_IS_DIR)
            if MODES[mode] & os.O_TRUNC and p.is_file() and self.storage.free_bytes is not None:
                self.storage.free_bytes += p.stat().st_size
            fd = os.open(p, MODES[mode], 0o644)
            h = self.next_handle
            self.next_handle += 1
            self.handles[h] = fd
            return OP_FILE_OPEN_RES, struct.pack("<Q", h)
        if op == OP_READ:
            h, size = struct.unpack_from("<QQ", data)
            fd = self._fd(h)
            return OP_DATA, os.read(fd, min(size, MAX_READ))
        if op == OP_WRITE:
            (h,) = struct.unpack_from("<Q", data)
            fd = self._fd(h)
            payload = data[8:]
            self.storage.take(len(payload))
            view = memoryview(payload)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            return ok
        if op == OP_FILE_SEEK:
            h, whence, offset = struct.unpack_from("<QQq", data)
            os.lseek(self._fd(h), offset, whence)
            return ok
        if op == OP_FILE_TELL:
            (h,) = struct.unpack_from("<Q", data)
            return OP_FILE_TELL_RES, struct.pack("<Q", os.lseek(self._fd(h), 0, os.SEEK_CUR))
        if op == OP_FILE_SET_SIZE:
            h, size = struct.unpack_from("<QQ", data)
            os.ftruncate(self._fd(h), size)
            return ok
        if op == OP_FILE_CLOSE:
            (h,) = struct.unpack_from("<Q", data)
            os.close(self.handles.pop(h, -1)) if h in self.handles else None
            return ok
        if op == OP_GET_DEVINFO:
            sv = os.statvfs(self.root)
            free = sv.f_bavail * sv.f_frsize
            if self.storage.free_bytes is not None:
                free = min(free, self.storage.free_bytes)
            info = {"Model": self.model, "FSTotalBytes": sv.f_blocks * sv.f_frsize,
                    "FSFreeBytes": free, "FSBlockSize": 4096}
            return OP_DATA, b"".join(f"{k}\0{v}\0".encode() for k, v in info.items())
        raise AfcError(E_NOT_SUPPORTED)

    def _fd(self, h: int) -> int:
        if h not in self.handles:
            raise AfcError(E_INVALID_ARG)
        return self.handles[h]
