"""The on-device sampler: ONE long-running shell loop on the device (not an adb call per
sample) that prints, every interval, thermal zones, battery current/voltage/level/status,
CPU frequencies and the runner's VmHWM (from the pid file the run wrapper writes).

Output format (one block per sample, parsed by `parse_samples`):

    T <uptime seconds>
    Z <zone number> <type> <temp raw or error text>
    B <file> <raw or error text>          (current_now, voltage_now, capacity, status)
    F <cpu number> <kHz raw or error text>
    M <VmHWM line or nothing>
    E                                     (end of the sample)

A sample the sampler was stopped in the middle of has no `E` and is dropped (text without
any `E` line, from older samplers, is taken as it is).
"""

from __future__ import annotations

import shlex

from . import parsers as P

THERMAL = "/sys/class/thermal"
BATTERY = "/sys/class/power_supply/battery"
CPUS = "/sys/devices/system/cpu"


def sampler_script(interval_s: float = 0.5, pid_file: str | None = None,
                   max_samples: int | None = None) -> str:
    """The shell loop (POSIX sh + toybox: cat, grep, sleep)."""
    n = int(max_samples) if max_samples else 0
    pidf = shlex.quote(pid_file) if pid_file else "''"
    return (
        f"i=0; pf={pidf}; "
        "while :; do "
        "read up _ < /proc/uptime; echo \"T $up\"; "
        f"for z in {THERMAL}/thermal_zone*; do [ -e \"$z\" ] || continue; "
        "t=$(cat \"$z/type\" 2>/dev/null | tr ' ' _); v=$(cat \"$z/temp\" 2>&1 | tr '\\n' ' '); "
        "echo \"Z ${z##*thermal_zone} ${t:-?} $v\"; done; "
        "for f in current_now voltage_now capacity status; do "
        f"v=$(cat {BATTERY}/$f 2>&1 | tr '\\n' ' '); echo \"B $f $v\"; done; "
        f"for c in {CPUS}/cpu[0-9]*; do [ -e \"$c/cpufreq\" ] || continue; "
        "v=$(cat \"$c/cpufreq/scaling_cur_freq\" 2>&1 | tr '\\n' ' '); echo \"F ${c##*cpu} $v\"; done; "
        "if [ -n \"$pf\" ] && [ -r \"$pf\" ]; then p=$(cat \"$pf\"); "
        "[ -n \"$p\" ] && echo \"M $(grep VmHWM /proc/$p/status 2>/dev/null)\"; fi; "
        "echo E; "
        f"i=$((i+1)); [ {n} -gt 0 ] && [ $i -ge {n} ] && break; "
        f"sleep {interval_s:g}; done"
    )


def parse_samples(text: str) -> list[dict]:
    """Sampler output -> samples. Each sample:
    {"t_s": float, "temps_c": {type: C}, "battery_current_ua": float|None,
     "battery_voltage_v": float|None, "power_w": float|None, "battery_pct": float|None,
     "battery_status": str|None, "cpu_khz": {cpu: kHz}, "vmhwm_kb": int|None,
     "unknown": {name: reason}}   (never raises; garbage lines are ignored)"""
    samples: list[dict] = []
    cur: dict | None = None
    if not isinstance(text, str):
        return samples
    raw_currents = [ln.split(None, 2)[2] for ln in text.splitlines()
                    if ln.startswith("B current_now ") and len(ln.split(None, 2)) == 3]
    statuses = [ln[len("B status "):].strip() for ln in text.splitlines()
                if ln.startswith("B status ")]
    unit = P.infer_current_unit(raw_currents, statuses[-1] if statuses else None)
    # with end markers, a sample cut short (sampler stopped mid-block) is dropped
    need_end = any(ln.strip() == "E" for ln in text.splitlines())

    def finish(s: dict | None) -> None:
        if s is None:
            return
        if s.pop("_ended", False) is False and need_end:
            return
        raw_cur = s.pop("_current", None)
        if raw_cur is not None:
            c = P.parse_battery_current(raw_cur, status=s.get("battery_status"), unit=unit)
            if isinstance(c, P.Unknown):
                s["unknown"]["battery_current_ua"] = c.reason
            else:
                s["battery_current_ua"] = c.ua
                s["battery_current_unit_seen"] = c.unit_seen
                s["battery_sign_inverted"] = c.sign_inverted
        if s["battery_current_ua"] is not None and s["battery_voltage_v"] is not None:
            # power drawn from the battery (positive while discharging)
            s["power_w"] = -s["battery_current_ua"] / 1e6 * s["battery_voltage_v"]
        samples.append(s)

    def keep(s: dict, into: dict, key, unknown_key: str, value) -> None:
        """A parsed reading goes to into[key]; one that could not be read goes, with the
        reason, to s["unknown"][unknown_key]."""
        if isinstance(value, P.Unknown):
            s["unknown"][unknown_key] = value.reason
        else:
            into[key] = value

    for line in text.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "T":
            finish(cur)
            try:
                t = float(rest.split()[0])
            except (ValueError, IndexError):
                cur = None
                continue
            cur = {"t_s": t, "temps_c": {}, "battery_current_ua": None,
                   "battery_voltage_v": None, "power_w": None, "battery_pct": None,
                   "battery_status": None, "cpu_khz": {}, "vmhwm_kb": None, "unknown": {}}
            continue
        if cur is None:
            continue
        if tag == "E" and not rest.strip():
            cur["_ended"] = True
            finish(cur)
            cur = None
            continue
        if tag == "Z":
            parts = rest.split(None, 2)
            if len(parts) < 2:
                continue
            name = parts[1]
            if name in cur["temps_c"] or name in cur["unknown"]:
                name = f"{name}#{parts[0]}"
            keep(cur, cur["temps_c"], name, f"temp:{name}",
                 P.parse_thermal_temp(parts[2] if len(parts) > 2 else ""))
        elif tag == "B":
            f, _, raw = rest.partition(" ")
            if f == "current_now":
                cur["_current"] = raw
            elif f == "voltage_now":
                keep(cur, cur, "battery_voltage_v", "battery_voltage_v",
                     P.parse_battery_voltage(raw))
            elif f == "capacity":
                keep(cur, cur, "battery_pct", "battery_pct", P.parse_battery_capacity(raw))
            elif f == "status":
                cur["battery_status"] = raw.strip() or None
        elif tag == "F":
            cpu, _, raw = rest.partition(" ")
            v = P.parse_cpufreq(raw)
            if isinstance(v, P.Unknown):
                cur["unknown"][f"cpu{cpu}_khz"] = v.reason
            elif cpu.isdigit():
                cur["cpu_khz"][int(cpu)] = v
        elif tag == "M":
            v = P.parse_vmhwm(rest.strip())
            if not isinstance(v, P.Unknown):
                cur["vmhwm_kb"] = v
    finish(cur)
    return samples


def summarise(samples: list[dict]) -> dict:
    """Max temperature, mean power, peak VmHWM over samples (None where never known)."""
    temps = [max(s["temps_c"].values()) for s in samples if s["temps_c"]]
    powers = [s["power_w"] for s in samples if s["power_w"] is not None]
    hwm = [s["vmhwm_kb"] for s in samples if s["vmhwm_kb"] is not None]
    reasons: dict[str, str] = {}
    for s in samples:
        reasons.update(s["unknown"])
    return {"n": len(samples),
            "temperature_max_c": max(temps) if temps else None,
            "power_avg_w": sum(powers) / len(powers) if powers else None,
            "vmhwm_max_kb": max(hwm) if hwm else None,
            "unknown": reasons}
