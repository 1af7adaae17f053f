"""A device's temperature, one rule for every caller: :func:`hottest` and :func:`cool_down`
(the runner before a measured run, the sustained power/thermal runs, the Android gates).

The rule on simulated sensors: a device's measured temperature sensors count whenever it
has any; its simulated ones count only when it has none. SwapLab's virtual devices have
only simulated thermal zones, and those follow the host's real CPU load, so a cool-down on
a virtual device must honour them; beside a measured sensor they would only add noise.
Every result says whether the temperature it names was simulated.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from harness.devices.base import Device

__all__ = ["CoolDown", "Hottest", "cool_down", "hottest"]


@dataclasses.dataclass(frozen=True)
class Hottest:
    """The hottest temperature of a device (None: no sensor reads one) and its sensor."""

    temp_c: float | None
    sensor: str = ""
    simulated: bool = False


def hottest(device: Device) -> Hottest:
    """The hottest `*_temp_c` reading, by the rule above (measured sensors first)."""
    measured, simulated = [], []
    for r in device.read_sensors():
        if r.name.endswith("_temp_c") and r.value is not None:
            (simulated if r.simulated else measured).append(r)
    pool = measured or simulated
    if not pool:
        return Hottest(None)
    best = max(pool, key=lambda r: r.value)
    return Hottest(float(best.value), best.name, bool(best.simulated))


@dataclasses.dataclass
class CoolDown:
    """What a cool-down did, for the record (`info`), and whether the device is cool."""

    ok: bool
    info: dict

    @property
    def skip_reason(self) -> str:
        return self.info.get("reason", "")


def cool_down(device: Device, limit_c: float | None, timeout_s: float, *,
              progress: Callable[[str], None] = print, poll_s: float = 5.0,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic,
              other_heat: Callable[[], str | None] | None = None) -> CoolDown:
    """Wait until the hottest temperature is at or below `limit_c` and `other_heat()` (e.g.
    the thermal status an Android device reports) names nothing, at most `timeout_s`.

    info: "cooldown" (ok | timeout | not configured | no temperature sensor), temp_c,
    limit_c, sensor, simulated, waited_s, and on timeout "reason" naming what is hot."""
    if limit_c is None and other_heat is None:
        return CoolDown(True, {"cooldown": "not configured",
                               "why": "the profile sets no run.cooldown_temperature_c"})
    t0 = clock()
    announced = False
    while True:
        h = hottest(device) if limit_c is not None else Hottest(None)
        if limit_c is not None and h.temp_c is None and other_heat is None:
            return CoolDown(True, {"cooldown": "no temperature sensor"})
        hot = [why for why in [other_heat() if other_heat else None] if why]
        if limit_c is not None and h.temp_c is not None and h.temp_c > limit_c:
            what = "simulated" if h.simulated else "measured"
            hot.append(f"{h.sensor} {h.temp_c:.1f} C > {limit_c:g} C ({what})")
        waited = clock() - t0
        info = {"temp_c": h.temp_c, "limit_c": limit_c, "sensor": h.sensor,
                "simulated": h.simulated, "waited_s": round(waited, 1)}
        if not hot:
            return CoolDown(True, {"cooldown": "ok", **info})
        if waited >= timeout_s:
            return CoolDown(False, {"cooldown": "timeout", **info, "reason": (
                f"device {device.serial}: still hot after cooling down for {waited:.0f} s "
                f"(cooldown_timeout_s {timeout_s:g}): {', '.join(hot)}")})
        if not announced:
            progress(f"[swaplab] {device.serial}: cooling down ({', '.join(hot)}; at most "
                     f"{timeout_s:g} s)")
            announced = True
        sleep(poll_s)
