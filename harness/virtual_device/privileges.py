"""Who the virtual device's programs run as: never root.

Started by root, the device runs every shell command and program as an unprivileged
account (`nobody` by default, no supplementary groups), owns its writable folders
(/data, /sdcard, /storage) by that account, and hands pushed files over to it. Started by
anyone else, programs run as that user: never with more rights than whoever started the
device (and adb authentication lets in only that user's key, see adbauth.py).
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import stat
from pathlib import Path

DEVICE_USER = "nobody"
WRITABLE = ("data", "sdcard", "storage")


class PrivilegeError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class DeviceAccount:
    name: str
    uid: int
    gid: int

    def spawn_kwargs(self) -> dict:
        """subprocess / asyncio.create_subprocess_exec arguments that drop to the account
        (before exec; a preexec_fn then runs as the account already)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def device_account(user: str = DEVICE_USER) -> DeviceAccount | None:
    """The account device programs run as, or None when this process is not root (they
    then run as the caller)."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(f"no user {user!r} to run the virtual device's programs as; "
                             "refusing to run them as root") from None
    if pw.pw_uid == 0:
        raise PrivilegeError(f"user {user!r} is root; refusing to run device programs as root")
    return DeviceAccount(user, pw.pw_uid, pw.pw_gid)


def check_reachable(root: Path, account: DeviceAccount) -> None:
    """Every folder above the sandbox root must let the account through (x for others),
    or nothing on the device could run; say which one does not."""
    for parent in [*reversed(Path(root).resolve().parents)]:
        st = parent.stat()
        if st.st_uid != account.uid and not st.st_mode & stat.S_IXOTH:
            raise PrivilegeError(
                f"virtual device root {root}: {parent} (mode {stat.S_IMODE(st.st_mode):o}) does "
                f"not let {account.name!r} (who device programs run as) through; put the root "
                "in a folder others can enter, e.g. under /tmp")


def hand_over(path: Path, account: DeviceAccount | None) -> None:
    """Make a file or folder the device wrote on the account's behalf (a push) its own."""
    if account is not None:
        os.lchown(path, account.uid, account.gid)


def make_folders(folder: Path, root: Path, account: DeviceAccount | None) -> None:
    """mkdir -p for a push, the new folders handed to the account."""
    missing = [d for d in [folder, *folder.parents] if not d.exists() and d.is_relative_to(root)]
    folder.mkdir(parents=True, exist_ok=True)
    for d in reversed(missing):
        hand_over(d, account)


def prepare_root(root: Path, account: DeviceAccount | None) -> None:
    """The device's writable folders belong to the account; the rest stays read-only."""
    if account is None:
        return
    check_reachable(root, account)
    root = Path(root)
    os.chmod(root, 0o755)
    for top in WRITABLE:
        for dirpath, dirs, files in os.walk(root / top):
            hand_over(Path(dirpath), account)
            for name in dirs + files:
                hand_over(Path(dirpath) / name, account)


def inside(root: Path, host_path: Path) -> bool:
    """The path, symlinks followed, stays inside the sandbox root (a device program
    cannot make the device's own file service read or write outside through a link)."""
    try:
        return Path(os.path.realpath(host_path)).is_relative_to(Path(root).resolve())
    except (OSError, ValueError):
        return False


def prompt(device_name: str) -> str:
    """The interactive shell's PS1. The shell expands PS1 ($(...), backquotes, $VAR), so
    the profile's ro.product.device goes in only as plain characters, never as code."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", device_name)[:64] + ":/ $ "
