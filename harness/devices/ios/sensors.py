"""Pure functions: AppleSmartBattery (diagnostics_relay IORegistry) and sysmontap rows to
SwapLab's sensor names, units and signs (as on Android: current in uA, negative while
discharging; power in W drawn from the battery; temperatures in C)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from harness.devices.base import SensorReading

THERMAL_STATES = ("nominal", "fair", "serious", "critical")


def _num(d: Mapping, key: str) -> float | None:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def battery_readings(battery: Mapping | None, simulated: bool, reason: str = ""
                     ) -> list[SensorReading]:
    """AppleSmartBattery: Temperature in 1/100 C, Voltage in mV, InstantAmperage in mA
    (negative while discharging; Amperage is the averaged value, used when the instant one
    is missing). A missing entry or key gives a reading with value None and the reason."""
    names = ("battery_temp_c", "battery_voltage_v", "battery_current_ua", "battery_power_w",
             "battery_level_pct")
    if not battery:
        why = reason or "the IORegistry has no AppleSmartBattery entry"
        return [SensorReading(n, None, simulated, why) for n in names]
    out = []
    t = _num(battery, "Temperature")
    out.append(SensorReading("battery_temp_c", t / 100.0 if t is not None else None, simulated,
                             "" if t is not None else "AppleSmartBattery has no Temperature"))
    mv = _num(battery, "Voltage")
    v = mv / 1000.0 if mv is not None else None
    out.append(SensorReading("battery_voltage_v", v, simulated,
                             "" if v is not None else "AppleSmartBattery has no Voltage"))
    ma = _num(battery, "InstantAmperage")
    if ma is None:
        ma = _num(battery, "Amperage")
    ua = ma * 1000.0 if ma is not None else None
    out.append(SensorReading("battery_current_ua", ua, simulated,
                             "" if ua is not None else "AppleSmartBattery has no InstantAmperage"))
    if ua is not None and v is not None:
        charging = bool(battery.get("IsCharging")) or bool(battery.get("ExternalConnected"))
        power = -ua / 1e6 * v
        if charging:
            out.append(SensorReading("battery_power_w", None, simulated,
                                     "charging: the battery current is not the phone's draw"))
        else:
            out.append(SensorReading("battery_power_w", power, simulated))
    else:
        out.append(SensorReading("battery_power_w", None, simulated,
                                 "needs battery voltage and current"))
    pct = _num(battery, "CurrentCapacity")
    out.append(SensorReading("battery_level_pct", pct, simulated,
                             "" if pct is not None else "AppleSmartBattery has no CurrentCapacity"))
    return out


def app_usage(rows: Iterable[Mapping], pid: int) -> dict:
    """From sysmontap process rows (dicts of the requested attributes): the app's mean and
    max CPU (%, 100 = one core) and peak physical footprint (MB)."""
    cpu, footprint = [], []
    for row in rows:
        if row.get("pid") != pid:
            continue
        if isinstance(row.get("cpuUsage"), (int, float)):
            cpu.append(float(row["cpuUsage"]))
        if isinstance(row.get("physFootprint"), (int, float)):
            footprint.append(float(row["physFootprint"]))
    return {"samples": len(cpu),
            "cpu_mean_pct": sum(cpu) / len(cpu) if cpu else None,
            "cpu_max_pct": max(cpu) if cpu else None,
            "footprint_peak_mb": max(footprint) / 2**20 if footprint else None}


def thermal_level(state: str | None) -> int | None:
    """ProcessInfo.thermalState name -> 0 nominal .. 3 critical (None when unknown)."""
    return THERMAL_STATES.index(state) if state in THERMAL_STATES else None
