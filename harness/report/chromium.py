"""Check a report in headless Chromium (Debian `chromium`): load it offline, collect
console errors, dump the DOM, and keep a screenshot.

    check_report(html_path, screenshot=path) -> BrowserCheck(dom, console_errors, ...)

Every Chromium call is bounded by a timeout and uses a throw-away profile directory.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-quic", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--mute-audio", "--disable-extensions"]


class ChromiumError(RuntimeError):
    pass


@dataclasses.dataclass
class BrowserCheck:
    dom: str
    console_errors: list[str]
    stderr: str
    screenshot: Path | None


def find_chromium() -> str | None:
    for name in (os.environ.get("SWAPLAB_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome"):
        if name:
            path = shutil.which(name)
            if path:
                return path
    return None


def _run(exe: str, args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess:
    cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *args]
    env = dict(os.environ, HOME=str(profile))  # keep crashpad/fontconfig caches out of ~
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False, env=env, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    except subprocess.TimeoutExpired as e:
        raise ChromiumError(f"chromium did not finish in {timeout:.0f} s: {' '.join(cmd)}") from e


def console_errors(stderr: str) -> list[str]:
    """Console messages and uncaught errors Chromium logged (--enable-logging=stderr)."""
    out = []
    for line in stderr.splitlines():
        if "CONSOLE(" in line or "Uncaught" in line or "ERROR:CONSOLE" in line:
            out.append(line.strip())
    return out


def check_report(html: Path | str, *, screenshot: Path | str | None = None,
                 window: str = "1280,2000", timeout: float = 90.0,
                 exe: str | None = None) -> BrowserCheck:
    exe = exe or find_chromium()
    if exe is None:
        raise ChromiumError("chromium not found (Debian: apt-get install chromium)")
    url = Path(html).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="swaplab-chromium-") as tmp:
        profile = Path(tmp)
        r = _run(exe, ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000",
                       "--dump-dom", url], profile / "a", timeout)
        if r.returncode != 0 or "<html" not in r.stdout.lower():
            raise ChromiumError(f"chromium --dump-dom failed (exit {r.returncode}): "
                                f"{r.stderr[-2000:]}")
        shot = None
        if screenshot is not None:
            shot = Path(screenshot).resolve()
            shot.parent.mkdir(parents=True, exist_ok=True)
            s = _run(exe, [f"--screenshot={shot}", f"--window-size={window}", url],
                     profile / "b", timeout)
            if s.returncode != 0 or not shot.is_file():
                raise ChromiumError(f"chromium --screenshot failed (exit {s.returncode}): "
                                    f"{s.stderr[-2000:]}")
        return BrowserCheck(dom=r.stdout, console_errors=console_errors(r.stderr),
                            stderr=r.stderr, screenshot=shot)
