"""Fault injection for the virtual device (for tests of what the harness does when a
device misbehaves). Each fault is one `--fault` value:

  drop-after=S[:PATTERN]   S seconds after a shell command containing PATTERN (default
                           "swap_runner") starts, every adb connection is cut and the
                           device stops listening: it is gone, like an unplugged phone.
  blip-after=S[:PATTERN]   like drop-after, but once and the device keeps listening: every
                           adb connection is cut, then `adb connect` brings it back (a
                           Wi-Fi blip, a loose cable; the lab's reconnect-once path).
  slow-link=BPS            every packet is delayed as if the link carried BPS bytes/s.
  full-storage=BYTES       /data holds at most BYTES: pushes beyond fail with
                           "No space left on device" (shell writes are not limited).
  kill-runner=S[:PATTERN]  S seconds after a shell command containing PATTERN (default
                           "swap_runner") starts, its processes get SIGKILL (exit 137),
                           like the low-memory killer.
  sensor-unreadable=NAME   the sensor file NAME (e.g. "thermal_zone0/temp",
                           "battery/current_now") becomes a directory: reads fail with
                           "Is a directory" (as root, permissions cannot stop reads).
  hot=C                    the simulated SoC starts at C degrees (cool-down gate tests).
  battery=PCT              the simulated battery starts at PCT percent.
  charging                 the simulated battery reports "Charging" (USB powered).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal

from .transport import session_pids


@dataclasses.dataclass
class Faults:
    drop_after_s: float | None = None
    drop_pattern: str = "swap_runner"
    blip_after_s: float | None = None
    blip_pattern: str = "swap_runner"
    slow_link_bps: float | None = None
    full_storage_bytes: int | None = None
    kill_runner_after_s: float | None = None
    kill_pattern: str = "swap_runner"
    unreadable_sensors: list[str] = dataclasses.field(default_factory=list)
    hot_c: float | None = None
    battery_pct: float | None = None
    charging: bool = False

    def describe(self) -> list[str]:
        out = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v not in (None, False, []) and f.name not in ("drop_pattern", "kill_pattern",
                                                                   "blip_pattern"):
                out.append(f"{f.name}={v}")
        return out


class FaultSpecError(ValueError):
    pass


def _seconds_and_pattern(value: str, default_pattern: str) -> tuple[float, str]:
    secs, _, pattern = value.partition(":")
    try:
        s = float(secs)
    except ValueError:
        raise FaultSpecError(f"expected seconds, got {secs!r}") from None
    if s < 0:
        raise FaultSpecError(f"seconds must be >= 0, got {s}")
    return s, pattern or default_pattern


def parse_faults(specs: list[str] | tuple[str, ...]) -> Faults:
    """Parse `--fault` values; raises FaultSpecError with a clear message."""
    f = Faults()
    for spec in specs:
        name, eq, value = spec.partition("=")
        name = name.strip()
        try:
            if name == "drop-after":
                f.drop_after_s, f.drop_pattern = _seconds_and_pattern(value, "swap_runner")
            elif name == "blip-after":
                f.blip_after_s, f.blip_pattern = _seconds_and_pattern(value, "swap_runner")
            elif name == "kill-runner":
                f.kill_runner_after_s, f.kill_pattern = _seconds_and_pattern(value, "swap_runner")
            elif name == "slow-link":
                f.slow_link_bps = float(value)
                if f.slow_link_bps <= 0:
                    raise FaultSpecError("slow-link needs a positive bytes/s")
            elif name == "full-storage":
                f.full_storage_bytes = int(value)
            elif name == "sensor-unreadable":
                if not value:
                    raise FaultSpecError("sensor-unreadable needs a sensor file name")
                f.unreadable_sensors.append(value)
            elif name == "hot":
                f.hot_c = float(value)
            elif name == "battery":
                f.battery_pct = float(value)
            elif name == "charging":
                f.charging = value.lower() not in ("0", "false", "no") if eq else True
            else:
                raise FaultSpecError(f"unknown fault {name!r}")
        except ValueError as e:
            raise FaultSpecError(f"bad --fault {spec!r}: {e}") from None
    return f


def schedule_faults(dev, sid: int, command: str) -> None:
    """Arm the faults a shell command of the virtual device `dev` (server.VirtualDevice)
    triggers; runs on the device's server loop. `sid`: the command's session id."""
    f = dev.faults
    loop = asyncio.get_running_loop()
    if f.drop_after_s is not None and f.drop_pattern in command:
        dev.events.append(f"drop scheduled in {f.drop_after_s}s for {command[:80]!r}")
        loop.call_later(f.drop_after_s, dev.drop_now)
    if f.blip_after_s is not None and f.blip_pattern in command:
        dev.events.append(f"blip scheduled in {f.blip_after_s}s for {command[:80]!r}")
        loop.call_later(f.blip_after_s, dev.blip_now)
        f.blip_after_s = None  # once: the reconnected device then works
    if f.kill_runner_after_s is not None and f.kill_pattern in command:
        def kill():
            pids = session_pids(sid, f.kill_pattern)
            dev.events.append(f"killed {pids} ({f.kill_pattern})")
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        loop.call_later(f.kill_runner_after_s, kill)
