"""Parsers for what Android devices print, with unit and sign normalisation.

Every parser is a pure function that never raises on bad input: it returns a value in
SwapLab units (degrees C, microamps, volts, kHz, kB) or `Unknown(reason)`. Conventions
and the vendor variations they undo (sources in tests/fixtures/android/SOURCES.md):

* thermal zone `temp`: millidegrees C by rule; some vendors report deci- or whole degrees.
* battery `current_now`: microamps by rule (Linux power_supply ABI), negative while
  discharging; some vendors (e.g. Samsung) report mA, several phones invert the sign.
* battery `voltage_now`: microvolts by rule; some report millivolts.
* battery `temp` (sysfs) and `dumpsys battery` temperature: tenths of a degree C.
* `dumpsys thermalservice`: "Thermal Status: N", N = 0 NONE .. 6 SHUTDOWN.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping

THERMAL_STATUS_NAMES = ("NONE", "LIGHT", "MODERATE", "SEVERE", "CRITICAL", "EMERGENCY",
                        "SHUTDOWN")

# plausible ranges: outside them a reading is "unknown", not a number
TEMP_RANGE_C = (-40.0, 150.0)
CURRENT_MAX_UA = 20_000_000      # 20 A: beyond any phone
VOLTAGE_RANGE_V = (2.0, 10.0)


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A value that could not be read or understood; `reason` says why."""

    reason: str

    def __bool__(self) -> bool:
        return False


def is_unknown(v) -> bool:
    return isinstance(v, Unknown)


def _short(text, n: int = 120) -> str:
    s = repr(text)
    return s if len(s) <= n else s[:n] + "...'"


def _int(raw) -> int | Unknown:
    if raw is None:
        return Unknown("no value")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    text = str(raw).strip()
    if not text:
        return Unknown("empty value")
    if not re.fullmatch(r"[+-]?\d{1,19}", text):
        return Unknown(f"not an integer: {_short(text)}")
    return int(text)


# --- getprop ---------------------------------------------------------------------------
_PROP_RE = re.compile(r"^\[([^\]]*)\]: \[(.*)\]\s*$")


def parse_getprop(text: str) -> dict[str, str]:
    """`getprop` output ("[key]: [value]" lines) -> dict. Lines that are not properties
    are ignored; a value spanning lines is joined with "\\n"."""
    props: dict[str, str] = {}
    if not isinstance(text, str):
        return props
    pending_key = None
    pending: list[str] = []
    for line in text.splitlines():
        if pending_key is not None:
            if line.endswith("]"):
                pending.append(line[:-1])
                props[pending_key] = "\n".join(pending)
                pending_key = None
            else:
                pending.append(line)
            continue
        m = _PROP_RE.match(line)
        if m:
            props[m.group(1)] = m.group(2)
            continue
        m2 = re.match(r"^\[([^\]]*)\]: \[(.*)$", line)
        if m2:
            pending_key, pending = m2.group(1), [m2.group(2)]
    return props


def soc_of(props: Mapping[str, str]) -> tuple[str | None, str]:
    """The SoC name from `ro.soc.model` (Android 12+), else `ro.board.platform`."""
    for key in ("ro.soc.model", "ro.board.platform", "ro.hardware.chipname"):
        v = (props.get(key) or "").strip()
        if v:
            return v, key
    return None, "no ro.soc.model / ro.board.platform"


# --- temperatures ----------------------------------------------------------------------
def normalise_temp(value: float, unit: str | None = None) -> float | Unknown:
    """A raw thermal reading in degrees C. unit: "milli" | "deci" | "whole" | None (guess
    from magnitude: >= 1000 milli, >= 200 deci, else whole)."""
    if unit is None:
        a = abs(value)
        unit = "milli" if a >= 1000 else "deci" if a >= 200 else "whole"
    div = {"milli": 1000.0, "deci": 10.0, "whole": 1.0}.get(unit)
    if div is None:
        return Unknown(f"unknown temperature unit {unit!r}")
    c = value / div
    if not TEMP_RANGE_C[0] <= c <= TEMP_RANGE_C[1]:
        return Unknown(f"implausible temperature {value} ({unit} -> {c:g} C)")
    return c


def parse_thermal_temp(raw, unit: str | None = None) -> float | Unknown:
    """A thermal_zone*/temp file -> degrees C."""
    v = _int(raw)
    if isinstance(v, Unknown):
        return Unknown(f"thermal temp: {v.reason}")
    return normalise_temp(v, unit)


def parse_thermal_zones(text: str) -> dict[str, float | Unknown]:
    """Lines "<zone> <type> <temp>" (what the sampler prints per zone) -> {type: C}.
    Duplicate types get "#<zone>" appended."""
    out: dict[str, float | Unknown] = {}
    if not isinstance(text, str):
        return out
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        zone, ztype = parts[0], parts[1]
        raw = parts[2] if len(parts) > 2 else ""
        name = ztype if ztype not in out else f"{ztype}#{zone}"
        out[name] = parse_thermal_temp(raw)
    return out


@dataclasses.dataclass(frozen=True)
class ThermalService:
    status: int | Unknown
    hal_ready: bool | None
    temperatures: dict[str, float]     # HAL temperatures by name, degrees C

    @property
    def status_name(self) -> str:
        if isinstance(self.status, Unknown):
            return "UNKNOWN"
        return THERMAL_STATUS_NAMES[self.status]


_TEMP_OBJ = re.compile(r"Temperature\{mValue=([-+0-9.eE]+|NaN), mType=(-?\d+), mName=([^,}]*),"
                       r" mStatus=(-?\d+)")


def parse_thermalservice(text: str) -> ThermalService:
    """`dumpsys thermalservice` -> ThermalService. A missing/odd status is Unknown, with
    "HAL Ready: false" named as the reason when the HAL is down."""
    if not isinstance(text, str):
        return ThermalService(Unknown("no output"), None, {})
    hal_ready = None
    m = re.search(r"^\s*HAL Ready:\s*(true|false)\s*$", text, re.MULTILINE)
    if m:
        hal_ready = m.group(1) == "true"
    status: int | Unknown
    m = re.search(r"^\s*Thermal Status:\s*(\S+)\s*$", text, re.MULTILINE)
    if not m:
        reason = "no 'Thermal Status' line"
        if "Can't find service" in text:
            reason = "thermalservice not available"
        status = Unknown(reason + ("; HAL Ready: false" if hal_ready is False else ""))
    else:
        v = _int(m.group(1))
        if isinstance(v, Unknown) or not 0 <= v <= 6:
            status = Unknown(f"thermal status out of range: {_short(m.group(1))}")
        else:
            status = v
    if hal_ready is False and not isinstance(status, Unknown):
        status = Unknown(f"HAL Ready: false (status {status} is not from the HAL)")
    temps: dict[str, float] = {}
    cur = text.split("Current temperatures from HAL:", 1)
    section = cur[1] if len(cur) == 2 else text
    for tm in _TEMP_OBJ.finditer(section):
        try:
            val = float(tm.group(1))
        except ValueError:
            continue
        if math.isnan(val) or not TEMP_RANGE_C[0] <= val <= TEMP_RANGE_C[1]:
            continue
        temps.setdefault(tm.group(3).strip(), val)
    return ThermalService(status, hal_ready, temps)


# --- battery ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Current:
    ua: float            # microamps, negative = discharging (kernel convention)
    unit_seen: str       # "uA" or "mA" (as the device reported)
    sign_inverted: bool  # the device reported discharge as positive


def parse_battery_current(raw, status: str | None = None, unit: str | None = None,
                          invert: bool | None = None) -> Current | Unknown:
    """battery/current_now -> microamps, negative while discharging.

    unit: "uA" | "mA" | None (guess: |v| < 10000 is mA: no phone draws < 10 mA while
    measured, and a uA reading >= 10 A is impossible). invert: None = decide from
    `status` ("Discharging" with a positive value, or "Charging" with a negative one,
    means the vendor inverted the sign)."""
    v = _int(raw)
    if isinstance(v, Unknown):
        return Unknown(f"battery current: {v.reason}")
    if unit is None:
        unit = "mA" if 0 < abs(v) < 10000 else "uA"
    if unit not in ("uA", "mA"):
        return Unknown(f"battery current: unknown unit {unit!r}")
    ua = float(v) * (1000.0 if unit == "mA" else 1.0)
    if abs(ua) > CURRENT_MAX_UA:
        return Unknown(f"battery current: implausible {v} {unit}")
    st = (status or "").strip().lower()
    if invert is None:
        invert = (st == "discharging" and ua > 0) or (st == "charging" and ua < 0)
    if invert:
        ua = -ua
    return Current(ua, unit, bool(invert))


def parse_battery_voltage(raw) -> float | Unknown:
    """battery/voltage_now (uV by rule, mV on some) -> volts."""
    v = _int(raw)
    if isinstance(v, Unknown):
        return Unknown(f"battery voltage: {v.reason}")
    for div in (1e6, 1e3):
        volts = v / div
        if VOLTAGE_RANGE_V[0] <= volts <= VOLTAGE_RANGE_V[1]:
            return volts
    return Unknown(f"battery voltage: implausible {v}")


def parse_battery_capacity(raw) -> float | Unknown:
    v = _int(raw)
    if isinstance(v, Unknown):
        return Unknown(f"battery capacity: {v.reason}")
    if not 0 <= v <= 100:
        return Unknown(f"battery capacity out of range: {v}")
    return float(v)


@dataclasses.dataclass(frozen=True)
class BatteryState:
    level_pct: float | Unknown
    charging: bool | Unknown
    plugged: tuple[str, ...]          # "AC", "USB", "Wireless", "Dock"
    status: int | None                # BatteryManager.BATTERY_STATUS_*: 2 charging, 3 discharging
    voltage_v: float | None
    temperature_c: float | None


def parse_dumpsys_battery(text: str) -> BatteryState:
    """`dumpsys battery` -> BatteryState. charging = status 2 (CHARGING) or 5 (FULL) or
    any "<X> powered: true" (USB power distorts current readings even when full)."""
    if not isinstance(text, str) or "level" not in text:
        return BatteryState(Unknown("no battery state in dumpsys output"),
                            Unknown("no battery state in dumpsys output"), (), None, None, None)
    fields: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.strip().partition(":")
        if sep and k and k not in fields:
            fields[k.strip()] = v.strip()
    plugged = tuple(x for x in ("AC", "USB", "Wireless", "Dock")
                    if fields.get(f"{x} powered", "").lower() == "true")
    level = _int(fields.get("level"))
    scale = _int(fields.get("scale", "100"))
    if isinstance(level, Unknown):
        level_pct: float | Unknown = Unknown(f"battery level: {level.reason}")
    elif isinstance(scale, Unknown) or scale <= 0:
        level_pct = Unknown("battery scale missing or zero")
    else:
        level_pct = 100.0 * level / scale
        if not 0 <= level_pct <= 100:
            level_pct = Unknown(f"battery level out of range: {level}/{scale}")
    status = _int(fields.get("status"))
    status_i = None if isinstance(status, Unknown) else status
    if status_i is None and not plugged and "AC powered" not in fields:
        charging: bool | Unknown = Unknown("no status or power source in dumpsys battery")
    else:
        charging = bool(plugged) or status_i in (2, 5)
    volt = _int(fields.get("voltage"))
    voltage_v = None
    if not isinstance(volt, Unknown):
        vv = parse_battery_voltage(volt * 1000 if abs(volt) < 100000 else volt)
        voltage_v = None if isinstance(vv, Unknown) else vv
    t = _int(fields.get("temperature"))
    temp_c = None
    if not isinstance(t, Unknown):
        tc = normalise_temp(t, "deci")
        temp_c = None if isinstance(tc, Unknown) else tc
    return BatteryState(level_pct, charging, plugged, status_i, voltage_v, temp_c)


# --- CPUs ------------------------------------------------------------------------------
def parse_cpufreq(raw) -> int | Unknown:
    """scaling_cur_freq (kHz) -> kHz."""
    v = _int(raw)
    if isinstance(v, Unknown):
        return Unknown(f"cpufreq: {v.reason}")
    if not 0 < v < 10_000_000:
        return Unknown(f"cpufreq out of range: {v} kHz")
    return v


def parse_cpu_list(text) -> list[int] | Unknown:
    """"0-3,5" (sysfs cpu lists, also space-separated related_cpus) -> [0,1,2,3,5]."""
    if not isinstance(text, str) or not text.strip():
        return Unknown("empty cpu list")
    cpus: set[int] = set()
    for part in re.split(r"[,\s]+", text.strip()):
        m = re.fullmatch(r"(\d{1,4})(?:-(\d{1,4}))?", part)
        if not m:
            return Unknown(f"bad cpu list: {_short(text)}")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        if b < a:
            return Unknown(f"bad cpu range {part!r}")
        cpus.update(range(a, b + 1))
    return sorted(cpus)


def cpu_mask(cpus: Iterable[int]) -> str:
    """CPU numbers -> hex mask for toybox `taskset` (e.g. [4,5,6,7] -> "f0")."""
    m = 0
    for c in cpus:
        m |= 1 << c
    return format(m, "x")


def parse_clusters(related: Mapping[int, str], max_freq: Mapping[int, str] | None = None
                   ) -> list[dict] | Unknown:
    """cpuN/cpufreq/related_cpus texts (by cpu) -> clusters, slowest first:
    [{"cpus": [0,1,2,3], "max_khz": 1804800}, ...]."""
    groups: dict[tuple[int, ...], int | None] = {}
    for cpu, text in related.items():
        lst = parse_cpu_list(text)
        if isinstance(lst, Unknown):
            continue
        key = tuple(lst)
        mf = parse_cpufreq((max_freq or {}).get(cpu)) if max_freq else None
        if key not in groups or groups[key] is None:
            groups[key] = None if mf is None or isinstance(mf, Unknown) else mf
    if not groups:
        return Unknown("no cpufreq topology")
    clusters = [{"cpus": list(k), "max_khz": v} for k, v in groups.items()]
    clusters.sort(key=lambda c: (c["max_khz"] or 0, c["cpus"]))
    return clusters


# --- processes -------------------------------------------------------------------------
def parse_vmhwm(text) -> int | Unknown:
    """/proc/PID/status (or just its VmHWM line) -> peak RSS in kB."""
    if not isinstance(text, str):
        return Unknown("no status text")
    m = re.search(r"^VmHWM:\s*(\d+)\s*kB\s*$", text, re.MULTILINE)
    if not m:
        return Unknown("no VmHWM line")
    return int(m.group(1))


def parse_power_supply_uevent(text: str) -> dict[str, str]:
    """/sys/class/power_supply/battery/uevent ("POWER_SUPPLY_X=v" lines, or "X=v" as some
    tools print them) -> {"x": "v"} with lower-case names as in sysfs."""
    out: dict[str, str] = {}
    if not isinstance(text, str):
        return out
    for line in text.splitlines():
        k, sep, v = line.strip().partition("=")
        if not sep or not re.fullmatch(r"[A-Z0-9_]+", k or "-"):
            continue
        k = k.removeprefix("POWER_SUPPLY_")
        out[k.lower()] = v.strip()
    return out


def infer_current_unit(raws: Iterable, status: str | None = None) -> str:
    """Decide uA or mA for ONE device from all its current_now readings of a run: under
    load a phone draws >= 100 mA, so any |value| >= 10000 means uA. Small readings while
    "Not charging"/"Full" (USB power bypassing the battery) are uA near zero, not mA."""
    vals = []
    for r in raws:
        v = _int(r)
        if not isinstance(v, Unknown):
            vals.append(abs(v))
    if not vals or max(vals) == 0 or max(vals) >= 10000:
        return "uA"
    if (status or "").strip().lower() in ("not charging", "full"):
        return "uA"
    return "mA"


def battery_from_sysfs(values: Mapping[str, str]) -> dict:
    """Normalised battery readings from sysfs/uevent names (current_now, voltage_now,
    capacity, status, temp): {"current_ua", "voltage_v", "level_pct", "status", "temp_c",
    "sign_inverted", "unit_seen", "unknown": {name: reason}}."""
    status = values.get("status")
    out: dict = {"status": status, "unknown": {}}
    unit = infer_current_unit([values.get("current_now")], status)
    cur = parse_battery_current(values.get("current_now"), status=status, unit=unit)
    if isinstance(cur, Unknown):
        out["current_ua"] = None
        out["unknown"]["current_ua"] = cur.reason
    else:
        out.update(current_ua=cur.ua, unit_seen=cur.unit_seen, sign_inverted=cur.sign_inverted)
    for key, name, fn in (("voltage_now", "voltage_v", parse_battery_voltage),
                          ("capacity", "level_pct", parse_battery_capacity)):
        v = fn(values.get(key))
        out[name] = None if isinstance(v, Unknown) else v
        if isinstance(v, Unknown):
            out["unknown"][name] = v.reason
    t = _int(values.get("temp"))
    tc = normalise_temp(t, "deci") if not isinstance(t, Unknown) else t
    out["temp_c"] = None if isinstance(tc, Unknown) else tc
    if isinstance(tc, Unknown):
        out["unknown"]["temp_c"] = tc.reason
    return out
