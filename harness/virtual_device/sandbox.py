"""The virtual device's file system and shell: a folder on the host stands in for the
device's writable paths, and small tools stand in for Android's.

Path map (device path -> host path), documented in README.md:
  /data/...      -> ROOT/data/...      (so /data/local/tmp is ROOT/data/local/tmp)
  /sdcard/...    -> ROOT/sdcard/...    (/storage/emulated/0 links there)
  /storage/...   -> ROOT/storage/...
  /sys/...       -> ROOT/sys/...       (simulated thermal zones, battery, cpufreq)
  everything else is the host's own (/proc is real: VmHWM of real processes; /bin/sh,
  sha256sum, timeout, kill, cat come from the host).
The sync service maps EVERY absolute path into ROOT. The shell translates the mapped
prefixes where they appear literally in a command line, and maps ROOT back to "/" in
what the shell prints. Paths built at run time from pieces (e.g. "/da""ta") are not
translated; this is a test device, not a security boundary.

Tools on the shell's PATH (ROOT/.swaplab/bin): getprop, setprop (refused), dumpsys
(thermalservice, battery), taskset (toybox syntax `taskset [-p] HEXMASK cmd...`, device
CPUs mapped onto host CPUs modulo the host's CPU count).

Vulkan: device programs see the host's Vulkan driver only when the profile gives the phone
a GPU ([virtual] gpu = true, i.e. the property ro.hardware.vulkan is set); otherwise the
loader is pointed at no driver at all (vulkan_env). The host's driver is Mesa's lavapipe,
which runs on the host's CPU: GPU figures from a virtual device are simulated. (The static
phone build cannot dlopen a loader anyway; this matters for dynamically linked programs.)
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

MAPPED_PREFIXES = ("/data", "/sdcard", "/storage", "/sys")
#: ELF e_machine of each device ABI: a device program for another machine is refused
ELF_MACHINES = {"arm64-v8a": 183, "x86_64": 62}  # EM_AARCH64, EM_X86_64
#: the CPU qemu emulates for arm64 devices: ARMv8.2 with fp16 and dotprod, like the
#: Cortex-A76/A78 big cores of the phones the lab targets (ncnn's asimdhp/asimddp kernels)
QEMU_CPU = "cortex-a76"
#: Android's property naming the Vulkan driver; set from [virtual] gpu = true
VULKAN_PROPERTY = "ro.hardware.vulkan"
HOST_VULKAN_DRIVER = "lavapipe"
#: Mesa's lavapipe ICD manifests (Debian mesa-vulkan-drivers), the host driver passed through
_LAVAPIPE_ICDS = ("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json",
                  "/usr/share/vulkan/icd.d/lvp_icd.aarch64.json")
_PATH_RE = re.compile(r"(?<![\w.~/$-])(/data|/sdcard|/storage|/sys)(?![\w.-])")
_SAFE_ROOT = re.compile(r"^[\w./+-]+$")

GETPROP = r"""#!/bin/sh
# getprop of the SwapLab virtual device (properties from the profile's [virtual] section)
f="@ROOT@/.swaplab/props"
if [ $# -eq 0 ]; then
  sed 's/^\([^=]*\)=\(.*\)$/[\1]: [\2]/' "$f"
else
  awk -v k="$1" -v d="${2:-}" '{ i = index($0, "="); if (substr($0, 1, i - 1) == k) { print substr($0, i + 1); f = 1; exit } } END { if (!f) print d }' "$f"
fi
"""

SETPROP = """#!/bin/sh
echo "Failed to set property '$1' to '$2'.\\nSee dmesg for error reason." >&2
exit 1
"""

DUMPSYS = r"""#!/bin/sh
# dumpsys of the SwapLab virtual device: services written by the sensor simulation
d="@ROOT@/.swaplab/dumpsys"
if [ $# -eq 0 ] || [ "$1" = "-l" ]; then ls "$d"; exit 0; fi
if [ -f "$d/$1" ]; then cat "$d/$1"; exit 0; fi
echo "Can't find service: $1" >&2
exit 0
"""

TASKSET = r'''#!@PYTHON@
"""toybox-style taskset for the SwapLab virtual device: `taskset [-a] [-p] MASK [PID|cmd...]`.
Device CPU i runs on host CPU i % host_cpus (the virtual phone has more cores than the host)."""
import os, sys
args = sys.argv[1:]
flags = ""
while args and args[0].startswith("-") and len(args[0]) > 1:
    flags += args.pop(0)[1:]
if not args:
    print("usage: taskset [-ap] [mask] [PID | cmd [args...]]", file=sys.stderr); sys.exit(1)
n_dev = int(os.environ.get("SWAPLAB_DEVICE_CPUS", "8"))
host = sorted(os.sched_getaffinity(0))
def to_host(mask):
    cpus = {host[i % len(host)] for i in range(max(n_dev, mask.bit_length())) if mask >> i & 1}
    return cpus
if "p" in flags and len(args) == 1:
    m = 0
    for c in os.sched_getaffinity(int(args[0])):
        m |= 1 << c
    print("pid %s's current affinity mask: %x" % (args[0], m)); sys.exit(0)
try:
    mask = int(args[0], 16)
except ValueError:
    print("taskset: bad mask %r" % args[0], file=sys.stderr); sys.exit(1)
cpus = to_host(mask)
if not cpus:
    print("taskset: sched_setaffinity: Invalid argument", file=sys.stderr); sys.exit(1)
if "p" in flags:
    os.sched_setaffinity(int(args[1]), cpus); sys.exit(0)
if len(args) < 2:
    print("taskset: need a command", file=sys.stderr); sys.exit(1)
os.sched_setaffinity(0, cpus)
try:
    os.execvp(args[1], args[1:])
except OSError as e:
    print("taskset: %s: %s" % (args[1], e.strerror), file=sys.stderr); sys.exit(127)
'''


def _device_python() -> str:
    """A Python the device's unprivileged account can run (the lab's own may sit in a home
    folder only its owner enters): the system's python3 when there is one."""
    return shutil.which("python3", path="/usr/bin:/bin") or sys.executable


class Sandbox:
    def __init__(self, root: Path, properties: dict[str, str], abi: str, device_cpus: int = 8,
                 qemu_cpu: str = QEMU_CPU):
        self.root = Path(root).resolve()
        if not _SAFE_ROOT.match(str(self.root)):
            raise ValueError(f"virtual device root must be a plain path, got {self.root}")
        self.properties = dict(properties)
        self.abi = abi
        self.device_cpus = device_cpus
        self._root_b = str(self.root).encode()
        self.exec_shim: Path | None = None
        self.qemu_cpu = qemu_cpu
        self.notes: list[str] = []

    # --- layout ----------------------------------------------------------------
    def setup(self) -> None:
        r = self.root
        for d in ("data/local/tmp", "sdcard", "storage/emulated", "sys", ".swaplab/bin",
                  ".swaplab/dumpsys"):
            (r / d).mkdir(parents=True, exist_ok=True)
        link = r / "storage/emulated/0"
        if not link.exists() and not link.is_symlink():
            link.symlink_to("../../sdcard")
        self.write_props()
        tools = {"getprop": GETPROP, "setprop": SETPROP, "dumpsys": DUMPSYS, "taskset": TASKSET}
        for name, text in tools.items():
            p = r / ".swaplab/bin" / name
            p.write_text(text.replace("@ROOT@", str(r)).replace("@PYTHON@", _device_python()))
            p.chmod(0o755)
        # Device programs start as on a phone: static ELF files only, device CPU numbers
        # mapped onto the host's (execshim.c). Built for both ABIs.
        self.exec_shim = build_shim("execshim.c", r / ".swaplab" / "execshim.so")

    def write_props(self) -> None:
        lines = []
        for k in sorted(self.properties):
            v = str(self.properties[k]).replace("\n", " ")
            lines.append(f"{k}={v}\n")
        tmp = self.root / ".swaplab/props.tmp"
        tmp.write_text("".join(lines))
        os.replace(tmp, self.root / ".swaplab/props")

    # --- paths -----------------------------------------------------------------
    def to_host(self, device_path: str) -> Path:
        """Map any absolute device path into the sandbox (sync service)."""
        if not device_path.startswith("/"):
            device_path = "/" + device_path
        norm = posixpath.normpath(device_path)
        if norm.startswith("//"):
            norm = "/" + norm.lstrip("/")
        return self.root / norm.lstrip("/") if norm != "/" else self.root

    def data_usage(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root / "data"):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_size
                except OSError:
                    pass
        return total

    def translate_command(self, command: str) -> str:
        return _PATH_RE.sub(lambda m: str(self.root) + m.group(1), command)

    def untranslate_output(self, data: bytes) -> bytes:
        if self._root_b not in data:
            return data
        data = data.replace(self._root_b + b"/", b"/")
        return data.replace(self._root_b, b"/")

    def env(self) -> dict[str, str]:
        r = str(self.root)
        env = {
            "PATH": f"{r}/.swaplab/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": f"{r}/data/local/tmp",
            "TMPDIR": f"{r}/data/local/tmp",
            "ANDROID_DATA": f"{r}/data",
            "EXTERNAL_STORAGE": f"{r}/sdcard",
            "ANDROID_ROOT": "/system",
            "SHELL": "/bin/sh",
            "LANG": "C.UTF-8",
            "SWAPLAB_DEVICE_CPUS": str(self.device_cpus),
            "SWAPLAB_VIRTUAL_ROOT": r,
        }
        if os.environ.get("OMP_WAIT_POLICY"):
            env["OMP_WAIT_POLICY"] = os.environ["OMP_WAIT_POLICY"]
        if self.exec_shim is not None:
            env["LD_PRELOAD"] = str(self.exec_shim)
            env["SWAPLAB_DEVICE_MACHINE"] = str(ELF_MACHINES[self.abi])
        env.update(vulkan_env(self.properties, self.root))
        if self.abi == "arm64-v8a":
            env["SWAPLAB_QEMU"] = shutil.which("qemu-aarch64-static") or "/usr/bin/qemu-aarch64-static"
            env["SWAPLAB_QEMU_CPU"] = self.qemu_cpu
        return env


def vulkan_env(properties: dict[str, str], root: Path) -> dict[str, str]:
    """The Vulkan loader's driver list for device programs: the host's lavapipe when the
    phone has a GPU (ro.hardware.vulkan set), else a manifest path that does not exist, so
    the loader finds no driver (VK_DRIVER_FILES for loaders >= 1.3.207, VK_ICD_FILENAMES
    for older ones)."""
    if properties.get(VULKAN_PROPERTY):
        found = [p for p in _LAVAPIPE_ICDS if os.path.exists(p)]
        files = os.environ.get("VK_ICD_FILENAMES") or ":".join(found)
    else:
        files = str(root / ".swaplab" / "no-vulkan-driver.json")
    return {"VK_DRIVER_FILES": files, "VK_ICD_FILENAMES": files} if files else {}


def build_shim(source: str, out: Path) -> Path:
    """Compile the LD_PRELOAD shim next to this file (once per sandbox)."""
    src = Path(__file__).with_name(source)
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError(f"no C compiler (cc) for {source}")
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(out), str(src), "-ldl"],
                   check=True, capture_output=True, timeout=120)
    return out


def dump_state(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)
