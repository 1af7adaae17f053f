"""Apps on the virtual iPhone: installed bundles, their data containers, and running them.

An installed app is `ROOT/apps/<bundle id>/<Name>.app` (from the .ipa's Payload/); its data
container is `ROOT/containers/<bundle id>/` with Documents/, Library/, tmp/. A launch runs
the bundle's CFBundleExecutable as a process of this host (the virtual iPhone's "app" is the
host runner build) in Documents/, with the app contract of runner/ios/README.md played by
this host: `--swaplab-run-dir DIR` first, stdout/stderr to DIR/stdout.txt and
DIR/stderr.txt, DIR/exit_status.json when the program returns (a crash or a kill leaves
none), with the thermal state (SIMULATED here) at start, worst and end."""

from __future__ import annotations

import json
import logging
import os
import plistlib
import shutil
import signal
import subprocess
import threading
import time
import zipfile
from pathlib import Path

log = logging.getLogger("swaplab.virtual_device.ios.apps")

THERMAL_STATES = ["nominal", "fair", "serious", "critical"]
RUN_DIR_ARG = "--swaplab-run-dir"
DEFAULT_RUN_DIR = "swaplab-run"


class InstallError(Exception):
    def __init__(self, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.error, self.description = error, description


def thermal_state(t_soc_c: float) -> str:
    """iOS thermal state of the simulated SoC temperature (our model's thresholds)."""
    return THERMAL_STATES[0 if t_soc_c < 40 else 1 if t_soc_c < 46 else 2 if t_soc_c < 55 else 3]


class AppHost:
    def __init__(self, root: Path, sim=None, faults=None):
        self.root = Path(root)
        (self.root / "apps").mkdir(parents=True, exist_ok=True)
        (self.root / "containers").mkdir(parents=True, exist_ok=True)
        self.sim = sim
        self.faults = faults
        self._procs: dict[int, tuple[str, subprocess.Popen]] = {}
        self._lock = threading.Lock()
        self.on_launch = []  # callbacks(bundle, args): faults hook in here

    # --- installed apps -------------------------------------------------------------
    def info(self, bundle: str) -> dict | None:
        d = self.root / "apps" / bundle
        apps = sorted(d.glob("*.app")) if d.is_dir() else []
        if not apps:
            return None
        plist = plistlib.loads((apps[0] / "Info.plist").read_bytes())
        return {**plist, "Path": f"/private/var/containers/Bundle/Application/{bundle}/"
                                  f"{apps[0].name}",
                "Container": f"/private/var/mobile/Containers/Data/Application/{bundle}",
                "ApplicationType": "User", "_app": apps[0]}

    def installed(self) -> dict[str, dict]:
        out = {}
        for d in sorted((self.root / "apps").iterdir()):
            i = self.info(d.name)
            if i:
                out[d.name] = i
        return out

    def install(self, ipa: Path) -> str:
        """Unpack an .ipa; refuse what a phone refuses. Returns the bundle id."""
        try:
            zf = zipfile.ZipFile(ipa)
        except (zipfile.BadZipFile, OSError) as e:
            raise InstallError("PackageExtractionFailed", f"not a zip archive: {e}") from None
        with zf:
            names = zf.namelist()
            apps = sorted({n.split("/")[1] for n in names
                           if n.startswith("Payload/") and n.count("/") >= 2
                           and n.split("/")[1].endswith(".app")})
            if len(apps) != 1:
                raise InstallError("PackageInspectionFailed", "Payload/ must hold one .app")
            app = apps[0]
            try:
                info = plistlib.loads(zf.read(f"Payload/{app}/Info.plist"))
            except (KeyError, plistlib.InvalidFileException):
                raise InstallError("PackageInspectionFailed", f"{app} has no valid Info.plist") \
                    from None
            bundle = str(info.get("CFBundleIdentifier") or "")
            exe = str(info.get("CFBundleExecutable") or "")
            if not bundle or "/" in bundle or bundle.startswith(".") or not exe or "/" in exe:
                raise InstallError("PackageInspectionFailed",
                                   "Info.plist lacks CFBundleIdentifier/CFBundleExecutable")
            try:
                head = zf.read(f"Payload/{app}/{exe}")[:20]
            except KeyError:
                raise InstallError("PackageInspectionFailed", f"{app} has no executable {exe}") \
                    from None
            # this virtual iPhone runs host (x86_64 Linux) programs; an arm64 iOS binary
            # (Mach-O) cannot run here, as an x86 binary cannot run on a phone
            if head[:4] != b"\x7fELF" and not head.startswith(b"#!"):
                raise InstallError("IncorrectArchitecture",
                                   f"{exe} is not a program this virtual device can run "
                                   "(it runs host builds: python runner/build.py --abi x86_64)")
            dest = self.root / "apps" / bundle
            tmp = self.root / "apps" / f".{bundle}.installing"
            shutil.rmtree(tmp, ignore_errors=True)
            for n in names:
                if not n.startswith(f"Payload/{app}/") or n.endswith("/") or ".." in n.split("/"):
                    continue
                out = tmp / n[len("Payload/"):]
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(n) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            (tmp / app / exe).chmod(0o755)
            for extra in (tmp / app).glob("*.so"):
                extra.chmod(0o755)
        self.kill_bundle(bundle)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        for sub in ("Documents", "Library", "tmp"):
            (self.container(bundle) / sub).mkdir(parents=True, exist_ok=True)
        return bundle

    def uninstall(self, bundle: str) -> bool:
        if self.info(bundle) is None:
            return False
        self.kill_bundle(bundle)
        shutil.rmtree(self.root / "apps" / bundle, ignore_errors=True)
        shutil.rmtree(self.container(bundle), ignore_errors=True)
        return True

    def container(self, bundle: str) -> Path:
        return self.root / "containers" / bundle

    # --- processes --------------------------------------------------------------------
    def launch(self, bundle: str, args: list[str], env: dict[str, str],
               kill_existing: bool = True) -> int:
        info = self.info(bundle)
        if info is None:
            raise LookupError(f"no app with bundle identifier {bundle} is installed")
        if kill_existing:
            self.kill_bundle(bundle)
        docs = self.container(bundle) / "Documents"
        docs.mkdir(parents=True, exist_ok=True)
        run_dir, rest = DEFAULT_RUN_DIR, list(args)
        if len(rest) >= 2 and rest[0] == RUN_DIR_ARG:
            run_dir, rest = rest[1], rest[2:]
        rdir = (docs / run_dir).resolve()
        if not str(rdir).startswith(str(docs.resolve()) + "/"):
            raise LookupError(f"{RUN_DIR_ARG} {run_dir!r} is outside Documents")
        rdir.mkdir(parents=True, exist_ok=True)
        exe = info["_app"] / info["CFBundleExecutable"]
        # an app sees its launch environment, not the host's
        child_env = {"PATH": "/usr/bin:/bin", "HOME": str(self.container(bundle)),
                     "TMPDIR": str(self.container(bundle) / "tmp"), **env}
        with open(rdir / "stdout.txt", "wb") as out, open(rdir / "stderr.txt", "wb") as err:
            proc = subprocess.Popen([str(exe), *rest], cwd=docs, env=child_env, stdout=out,
                                    stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        if self.sim is not None:
            self.sim.track_session(proc.pid)
        with self._lock:
            self._procs[proc.pid] = (bundle, proc)
        start_state = self._thermal()
        threading.Thread(target=self._wait, args=(proc, rdir, start_state), daemon=True,
                         name=f"vios-app-{proc.pid}").start()
        for cb in self.on_launch:
            cb(bundle, args, proc.pid)
        return proc.pid

    def _thermal(self) -> str:
        return thermal_state(self.sim.t_soc) if self.sim is not None else "nominal"

    def _wait(self, proc: subprocess.Popen, rdir: Path, start_state: str) -> None:
        worst = THERMAL_STATES.index(start_state)
        while proc.poll() is None:
            worst = max(worst, THERMAL_STATES.index(self._thermal()))
            time.sleep(0.2)
        code = proc.returncode
        if code >= 0:  # the program returned: the app writes its status; a signal leaves none
            end = self._thermal()
            worst = max(worst, THERMAL_STATES.index(end))
            status = {"exit_code": code, "thermal_state_start": start_state,
                      "thermal_state_max": THERMAL_STATES[worst], "thermal_state_end": end,
                      "thermal_state_simulated": True}
            tmp = rdir / "exit_status.json.tmp"
            tmp.write_text(json.dumps(status))
            os.replace(tmp, rdir / "exit_status.json")

    def running_processes(self) -> list[tuple[int, str]]:
        with self._lock:
            return [(pid, b) for pid, (b, p) in self._procs.items() if p.poll() is None]

    def is_running(self, pid: int) -> bool:
        with self._lock:
            entry = self._procs.get(pid)
        return entry is not None and entry[1].poll() is None

    def pid_of(self, bundle: str) -> int | None:
        for pid, b in self.running_processes():
            if b == bundle:
                return pid
        return None

    def signal(self, pid: int, sig: int) -> None:
        with self._lock:
            entry = self._procs.get(pid)
        if entry is not None and entry[1].poll() is None:
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def kill_bundle(self, bundle: str) -> None:
        for pid, b in self.running_processes():
            if b == bundle:
                self.signal(pid, signal.SIGKILL)

    def kill_all(self) -> None:
        for pid, _ in self.running_processes():
            self.signal(pid, signal.SIGKILL)
