"""The on-device sampler: ONE long-running shell loop on the device (not an adb call per
sample) that prints, every interval, thermal zones, battery current/voltage/level/status,
CPU frequencies and the runner's VmHWM (from the pid file the run wrapper writes).

Cheap by design (issue 15: the old loop spawned ~67 processes per sample): per sample ONE
`grep -H ''` reads every sensor file (errors, e.g. "Is a directory", come out on the same
stream), shell builtins read the uptime, the lease and the runner's VmHWM, and `sleep`
waits. Measured with benchmarks/sampler_cost.py.

It stops by itself when its session ends: each sample reads the lease file (the device's
uptime in seconds until which it may run); the harness renews it while it needs samples
(`AndroidDevice.start_sampler`), so a harness killed by SIGTERM or SIGKILL leaves a sampler
that ends within one lease (LEASE_S), never one that runs on into the next run.

Output format (one block per sample, parsed by `parse_samples`):

    T <uptime seconds>
    <path>:<raw value>                    (grep -H: thermal_zoneN/{type,temp},
    grep: <path>: <error text>             power_supply/battery/*, cpuN/cpufreq/*)
    M VmHWM: <kB> kB                      (when the runner's pid file names a process)
    E                                     (end of the sample)
    X <why it stopped>                    (lease expired or removed)

The older tagged lines (`Z <zone> <type> <raw>`, `B <file> <raw>`, `F <cpu> <raw>`) are
still read. A sample the sampler was stopped in the middle of has no `E` and is dropped
(text without any `E` line, from older samplers, is taken as it is).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shlex
import threading

from harness.devices.base import DeviceError, RunResult

from . import parsers as P

THERMAL = "/sys/class/thermal"
BATTERY = "/sys/class/power_supply/battery"
CPUS = "/sys/devices/system/cpu"
BATTERY_FILES = ("current_now", "voltage_now", "capacity", "status")
LEASE_S = 30  # a sampler nobody renews ends this long after the last renewal
LEASE_IDS = itertools.count(1)

_ZONE = re.compile(r"/thermal_zone(\d+)/(type|temp)$")
_BATT = re.compile(r"/power_supply/battery/(\w+)$")
_FREQ = re.compile(r"/cpu(\d+)/cpufreq/scaling_cur_freq$")
_GREP_ERROR = re.compile(r"^grep: (/\S+): (.*)$")


def sampler_script(interval_s: float = 0.5, pid_file: str | None = None,
                   max_samples: int | None = None, lease_file: str | None = None) -> str:
    """The shell loop (POSIX sh + toybox grep and sleep: one grep and one sleep per sample,
    everything else shell builtins). With `lease_file`, it ends when the lease is gone or
    the device's uptime passes the second it names (`renew_lease_command`)."""
    n = int(max_samples) if max_samples else 0
    pidf = shlex.quote(pid_file) if pid_file else "''"
    lease = shlex.quote(lease_file) if lease_file else "''"
    files = " ".join([f"{THERMAL}/thermal_zone*/type", f"{THERMAL}/thermal_zone*/temp",
                      *(f"{BATTERY}/{f}" for f in BATTERY_FILES),
                      f"{CPUS}/cpu[0-9]*/cpufreq/scaling_cur_freq"])
    return (
        f"i=0; pf={pidf}; lease={lease}; "
        "while :; do "
        "read up _ < /proc/uptime; "
        "if [ -n \"$lease\" ]; then exp=; { read exp _ < \"$lease\"; } 2>/dev/null; "
        "if [ -z \"$exp\" ] || [ \"${up%%.*}\" -gt \"$exp\" ] 2>/dev/null; then "
        "echo \"X lease $lease expired or removed at uptime $up\"; break; fi; fi; "
        "echo \"T $up\"; "
        f"grep -H '' {files} 2>&1; "
        "if [ -n \"$pf\" ] && [ -r \"$pf\" ]; then p=; { read p _ < \"$pf\"; } 2>/dev/null; "
        "if [ -n \"$p\" ]; then { while read -r k v; do "
        "[ \"$k\" = VmHWM: ] && echo \"M VmHWM: $v\"; done < /proc/$p/status; } 2>/dev/null; "
        "fi; fi; "
        "echo E; "
        f"i=$((i+1)); [ {n} -gt 0 ] && [ $i -ge {n} ] && break; "
        f"sleep {interval_s:g}; done"
    )


def renew_lease_command(lease_file: str, lease_s: float = LEASE_S) -> str:
    """Shell command that lets the sampler run `lease_s` more seconds of device uptime."""
    q = shlex.quote(lease_file)
    return (f"read up _ < /proc/uptime && echo $(( ${{up%%.*}} + {int(lease_s)} )) > {q}.new "
            f"&& mv -f {q}.new {q}")


def _grep_line(line: str) -> tuple[str, str] | None:
    """(path, raw value or error text) of one `grep -H ''` output line, else None."""
    m = _GREP_ERROR.match(line)
    if m:
        return m.group(1), m.group(2)
    if line.startswith("/"):
        path, sep, value = line.partition(":")
        if sep:
            return path, value
    return None


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

    def zone(s: dict, number: str, type_: str, raw: str) -> None:
        name = type_.strip().replace(" ", "_") or "?"
        if name in s["temps_c"] or name in s["unknown"]:
            name = f"{name}#{number}"
        keep(s, s["temps_c"], name, f"temp:{name}", P.parse_thermal_temp(raw))

    def finish(s: dict | None) -> None:
        if s is None:
            return
        for number, z in sorted(s.pop("_zones", {}).items(), key=lambda kv: int(kv[0])):
            if "temp" in z:
                zone(s, number, z.get("type") or "?", z["temp"])
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
                   "battery_status": None, "cpu_khz": {}, "vmhwm_kb": None, "unknown": {},
                   "_zones": {}}
            continue
        if cur is None:
            continue
        if tag == "E" and not rest.strip():
            cur["_ended"] = True
            finish(cur)
            cur = None
            continue
        grep = _grep_line(line)
        if grep is not None:
            path, raw = grep
            if m := _ZONE.search(path):
                cur["_zones"].setdefault(m.group(1), {})[m.group(2)] = raw
                continue
            if m := _BATT.search(path):
                tag, rest = "B", f"{m.group(1)} {raw}"
            elif m := _FREQ.search(path):
                tag, rest = "F", f"{m.group(1)} {raw}"
            else:
                continue
        if tag == "Z":
            parts = rest.split(None, 2)
            if len(parts) < 2:
                continue
            zone(cur, parts[0], parts[1], parts[2] if len(parts) > 2 else "")
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


class LeasedSampler:
    """The on-device sampler (a background process of an AndroidDevice) and the thread
    that renews its lease until stop()."""

    def __init__(self, proc, lease: str, lease_s: float):
        self.proc = proc
        self.lease = lease
        self._stop = threading.Event()
        renew = renew_lease_command(lease, lease_s)

        def keep_alive() -> None:
            while not self._stop.wait(lease_s / 3):
                try:
                    proc.device.shell2(renew, timeout_s=max(lease_s / 3, 5))
                except DeviceError:
                    pass  # a missed renewal: the next one, or the lease ends the sampler

        self._thread = threading.Thread(target=keep_alive, name="swaplab-sampler-lease",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> RunResult:
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            return self.proc.stop(timeout_s)
        finally:
            with contextlib.suppress(DeviceError):
                self.proc.device.shell2(f"rm -f {shlex.quote(self.lease)}")
