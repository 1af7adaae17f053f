"""Gates checked before measuring on an Android device, as trusted labs do:

* battery level >= `min_battery_pct` (default 25 %), else skip with the reason;
* for power tests: not charging (USB power distorts `current_now`), else a loud warning
  (or a skip with `require_not_charging=True`);
* thermal status NONE (dumpsys thermalservice) and, when `cooldown_temperature_c` is set,
  every temperature at or below it; otherwise wait (cool down) up to
  `cooldown_timeout_s`, then skip naming status, temperature and limit;
* debuggable / emulator / virtual are recorded in `facts`.

The device needs `battery_state()`, `thermal_service()` and `read_sensors()` (as
AndroidDevice has). Time functions are injectable for tests.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from harness.devices.thermal import cool_down

from . import parsers as P


@dataclasses.dataclass
class GateResult:
    ok: bool
    skip_reason: str = ""
    warnings: list[str] = dataclasses.field(default_factory=list)
    facts: dict = dataclasses.field(default_factory=dict)


def check_gates(device, *, min_battery_pct: float = 25.0, power_test: bool = False,
                require_not_charging: bool = False, cooldown_temperature_c: float | None = None,
                cooldown_timeout_s: float = 300.0, poll_s: float = 5.0,
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic,
                warn: Callable[[str], None] | None = None) -> GateResult:
    res = GateResult(ok=True)
    serial = getattr(device, "serial", "?")
    res.facts.update({"debuggable": getattr(device, "debuggable", None),
                      "emulator": getattr(device, "emulator", None),
                      "virtual": getattr(device, "virtual", None),
                      "simulated": getattr(device, "simulated", None)})

    def warning(msg: str) -> None:
        res.warnings.append(msg)
        if warn:
            warn(msg)

    def skip(msg: str) -> GateResult:
        res.ok = False
        res.skip_reason = f"{serial}: {msg}"
        return res

    # battery
    bat = device.battery_state()
    res.facts["battery_pct"] = None if isinstance(bat.level_pct, P.Unknown) else bat.level_pct
    res.facts["charging"] = None if isinstance(bat.charging, P.Unknown) else bat.charging
    res.facts["plugged"] = list(bat.plugged)
    if isinstance(bat.level_pct, P.Unknown):
        warning(f"{serial}: battery level unknown ({bat.level_pct.reason}); battery gate not applied")
    elif bat.level_pct < min_battery_pct:
        return skip(f"battery {bat.level_pct:.0f}% is below the {min_battery_pct:.0f}% minimum "
                    "(min_battery_pct); charge the device")
    if power_test:
        if isinstance(bat.charging, P.Unknown):
            warning(f"{serial}: charging state unknown ({bat.charging.reason}); power numbers "
                    "may include USB charging")
        elif bat.charging:
            msg = (f"device is charging ({'/'.join(bat.plugged) or 'status charging'}): USB power "
                   "distorts battery current, power numbers are NOT trustworthy")
            if require_not_charging:
                return skip(msg)
            warning(f"WARNING {serial}: {msg}")

    # thermal: cool down (harness.devices.thermal), waiting for the thermal status too
    def thermal_status() -> str | None:
        ts = device.thermal_service()
        res.facts["thermal_status"] = ts.status_name
        if isinstance(ts.status, P.Unknown):
            if not res.facts.get("thermal_status_unknown"):
                res.facts["thermal_status_unknown"] = ts.status.reason
                warning(f"{serial}: thermal status unknown ({ts.status.reason}); "
                        "using temperatures only")
            return None
        return f"thermal status {ts.status_name}" if ts.status != 0 else None

    cd = cool_down(device, cooldown_temperature_c, cooldown_timeout_s, poll_s=poll_s,
                   sleep=sleep, clock=clock, other_heat=thermal_status,
                   progress=lambda _msg: None)  # the gate result says it all
    res.facts["temperature_max_c"] = cd.info.get("temp_c")
    res.facts["cooldown_s"] = cd.info.get("waited_s", 0.0)
    if not cd.ok:
        res.ok = False
        res.skip_reason = cd.skip_reason
    return res
