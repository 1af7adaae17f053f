"""Will this runner binary start on that device? Checked on the host before anything runs.

A runner built for the wrong machine, or one asking for a program interpreter the device
lacks (a glibc build on a phone: /lib/ld-linux-aarch64.so.1), fails with a bare exit 127 and
"not found" from the device's shell. This check reads the ELF file instead (machine, program
interpreter, NEEDED libraries) and names device, file and what is wrong.

Android devices are judged by rule, not by asking them: every Android device has exactly one
program interpreter per word size (/system/bin/linker64) and bionic's libraries; no Android
device has glibc. Linux hosts are asked: the interpreter and libraries must exist there.

pyelftools reads the ELF headers, program headers and the dynamic section (string table,
both word sizes and byte orders); that is more than a few struct.unpack calls get right.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

#: device ABI -> ELF e_machine name (pyelftools' spelling)
ABI_MACHINES = {
    "arm64-v8a": "EM_AARCH64",
    "armeabi-v7a": "EM_ARM",
    "x86_64": "EM_X86_64",
    "x86": "EM_386",
}
#: the program interpreters Android has (bionic's dynamic linker)
ANDROID_INTERPRETERS = {"/system/bin/linker64", "/system/bin/linker"}
#: the NDK's stable system libraries a native program may need on every Android device
ANDROID_LIBRARIES = {"libc.so", "libm.so", "libdl.so", "liblog.so", "libz.so",
                     "libandroid.so", "libEGL.so", "libGLESv2.so", "libGLESv3.so",
                     "libvulkan.so", "libmediandk.so", "libcamera2ndk.so",
                     "libnativewindow.so", "libOpenSLES.so", "libjnigraphics.so"}


class BinaryMismatch(RuntimeError):
    """The binary cannot start on the device; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class ElfFacts:
    machine: str
    interpreter: str | None
    needed: tuple[str, ...]


def read_elf(path: Path) -> ElfFacts:
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            interpreter = None
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    interpreter = seg.get_interp_name()
            needed = []
            for sec in elf.iter_sections():
                if isinstance(sec, DynamicSection):
                    needed += [t.needed for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
            return ElfFacts(elf["e_machine"], interpreter, tuple(needed))
    except (ELFError, OSError) as e:
        raise BinaryMismatch(f"{path}: not a readable ELF file ({e})") from None


def problems(facts: ElfFacts, abi: str, platform: str,
             exists: Callable[[str], bool] = lambda p: Path(p).exists()) -> list[str]:
    """What keeps a binary with `facts` from starting on a device of `abi` and `platform`
    (empty: nothing). `exists` answers for files of a Linux host."""
    found: list[str] = []
    want = ABI_MACHINES.get(abi)
    if want is None:
        found.append(f"the device's ABI {abi!r} is unknown to the check")
    elif facts.machine != want:
        found.append(f"it is built for {facts.machine}, the device runs {abi} ({want})")
    if platform == "android":
        if facts.interpreter and facts.interpreter not in ANDROID_INTERPRETERS:
            found.append(f"it needs the program interpreter {facts.interpreter}, which no "
                         "Android device has (no glibc; only /system/bin/linker64)")
        foreign = [n for n in facts.needed if n not in ANDROID_LIBRARIES]
        if foreign:
            found.append(f"it needs {', '.join(foreign)}, not on Android devices")
    else:
        if facts.interpreter and not exists(facts.interpreter):
            found.append(f"its program interpreter {facts.interpreter} is not on the device")
    return found


def check_binary(path: Path, *, serial: str, abi: str, platform: str, remote: str,
                 exists: Callable[[str], bool] = lambda p: Path(p).exists()) -> ElfFacts | None:
    """Raise BinaryMismatch naming device, file and every problem; return the ELF facts
    (None for a script, e.g. a test's stand-in runner: the device's shell starts those)."""
    try:
        with open(path, "rb") as f:
            if f.read(2) == b"#!":
                return None
    except OSError as e:
        raise BinaryMismatch(f"{serial}: runner binary {path} unreadable: {e}") from None
    facts = read_elf(path)
    found = problems(facts, abi, platform, exists)
    if found:
        hint = (f"build it with: python runner/build.py --abi {abi} --platform android"
                if platform == "android" else f"build it with: python runner/build.py --abi {abi}")
        raise BinaryMismatch(f"{serial} ({platform}, {abi}): {remote} (local {path}) cannot start "
                             f"there: {'; '.join(found)}. {hint}")
    return facts
