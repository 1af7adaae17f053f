"""Sensor simulation of the SwapLab virtual device. Every value it produces is SIMULATED.

Model (documented in README.md), updated every `tick_s` seconds from REAL input: the CPU
time consumed by processes started through the device's shell (utime + stime of every
process in the sessions of shell commands, read from the host's /proc):

  util   = CPU seconds used in the tick / tick length        (busy cores, >= 0)
  P [W]  = p_idle_w + p_core_w * util                         (SoC + rest of phone)
  T_soc  : dT/dt = (t_ambient_c + r_th_c_per_w * P - T) / tau_s   (first-order heating
           and cooling; tau_s = 20 s so tests see it move)
  T_batt : same with tau = 4 * tau_s and half the heating
  thermal status (dumpsys thermalservice): 0 NONE below 45 C, then one step per 5 C up
           to 6 SHUTDOWN at 70 C
  battery: V = 4.2 - 0.6 * (1 - level) - 0.05 * P volts; I = P / V amps; current_now in uA,
           negative while discharging (kernel power_supply ABI); level drains P*dt
           from a 4500 mAh x 3.85 V pack; "Charging" only with the `charging` fault
  cpufreq: a CPU runs at its max frequency while util > 0.2, else its min; when T_soc is
           above 60 C the big cores are capped (simulated throttling)

Per-profile knobs (optional, [virtual.sensors] in the profile): temp_unit ("milli" |
"deci" | "whole"), current_unit ("uA" | "mA"), current_sign (-1 | 1, sign while
discharging), and the model constants above by name.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger("swaplab.virtual_device.simulation")

STATUS_NAMES = ["NONE", "LIGHT", "MODERATE", "SEVERE", "CRITICAL", "EMERGENCY", "SHUTDOWN"]

# (type name, HAL temperature type (0 CPU, 1 GPU, 2 BATTERY, 3 SKIN), kind)
ZONES = [("cpu-0-0", 0, "soc"), ("cpu-1-0", 0, "soc"), ("gpuss-0", 1, "soc"),
         ("battery", 2, "battery"), ("skin-therm", 3, "skin")]

# cluster layout of the virtual phone (like SM6450: 4 little + 4 big cores)
CLUSTERS = [
    {"cpus": [0, 1, 2, 3], "min_khz": 300000, "max_khz": 1804800},
    {"cpus": [4, 5, 6, 7], "min_khz": 633600, "max_khz": 2208000},
]


def _clk_tck() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


class SensorSimulation:
    def __init__(self, root: Path, config: dict | None = None, hot_c: float | None = None,
                 battery_pct: float | None = None, charging: bool = False,
                 unreadable: list[str] | None = None, tick_s: float = 0.5):
        c = dict(config or {})
        self.root = Path(root)
        self.tick_s = tick_s
        self.t_ambient = float(c.get("t_ambient_c", 25.0))
        self.p_idle = float(c.get("p_idle_w", 0.6))
        self.p_core = float(c.get("p_core_w", 1.5))
        self.r_th = float(c.get("r_th_c_per_w", 8.0))
        self.tau = float(c.get("tau_s", 20.0))
        self.temp_unit = str(c.get("temp_unit", "milli"))
        self.current_unit = str(c.get("current_unit", "uA"))
        self.current_sign = -1 if int(c.get("current_sign", -1)) < 0 else 1
        self.t_soc = float(hot_c if hot_c is not None else c.get("t_start_c", self.t_ambient + 3))
        self.t_batt = self.t_ambient + (self.t_soc - self.t_ambient) * 0.5
        self.level = float(battery_pct if battery_pct is not None else c.get("battery_pct", 80))
        self.charging = charging
        self.unreadable = list(unreadable or [])
        self.sessions: set[int] = set()
        self._cpu_seen: dict[int, float] = {}
        self.util = 0.0
        self.power_w = self.p_idle
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = time.monotonic()
        self.write()

    # --- input: CPU time of shell sessions -------------------------------------
    def track_session(self, sid: int) -> None:
        with self._lock:
            self.sessions.add(sid)

    def _cpu_seconds_delta(self) -> float:
        with self._lock:
            sessions = set(self.sessions)
        if not sessions:
            return 0.0
        tck = _clk_tck()
        seen: dict[int, float] = {}
        delta = 0.0
        alive_sessions: set[int] = set()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            rest = raw[raw.rfind(b")") + 2:].split()
            try:
                sid = int(rest[3])
                if sid not in sessions:
                    continue
                cpu = (int(rest[11]) + int(rest[12])) / tck
            except (IndexError, ValueError):
                continue
            pid = int(name)
            alive_sessions.add(sid)
            seen[pid] = cpu
            delta += max(0.0, cpu - self._cpu_seen.get(pid, 0.0))
        self._cpu_seen = seen
        with self._lock:
            # sessions with no live process are finished: drop them (keep ones added meanwhile)
            added = self.sessions - sessions
            self.sessions = (sessions & alive_sessions) | added
        return delta

    # --- model --------------------------------------------------------------------
    def step(self, dt: float, cpu_s: float) -> None:
        self.util = cpu_s / dt if dt > 0 else 0.0
        self.power_w = self.p_idle + self.p_core * self.util
        target = self.t_ambient + self.r_th * self.power_w
        a = min(1.0, dt / self.tau)
        self.t_soc += (target - self.t_soc) * a
        bt = self.t_ambient + 0.5 * self.r_th * self.power_w
        self.t_batt += (bt - self.t_batt) * min(1.0, dt / (4 * self.tau))
        wh = 4.5 * 3.85
        if self.charging:
            self.level = min(100.0, self.level + 100.0 * 5.0 * dt / 3600 / wh)
        else:
            self.level = max(0.0, self.level - 100.0 * self.power_w * dt / 3600 / wh)

    @property
    def status(self) -> int:
        if self.t_soc < 45:
            return 0
        return min(6, 1 + int((self.t_soc - 45) // 5))

    @property
    def voltage_v(self) -> float:
        return 4.2 - 0.6 * (1 - self.level / 100) - 0.05 * self.power_w

    def _fmt_temp(self, t: float) -> str:
        if self.temp_unit == "deci":
            return str(round(t * 10))
        if self.temp_unit == "whole":
            return str(round(t))
        return str(round(t * 1000))

    def _zone_temp(self, kind: str) -> float:
        if kind == "battery":
            return self.t_batt
        if kind == "skin":
            return (self.t_soc + self.t_batt) / 2
        return self.t_soc

    # --- output: sysfs files + dumpsys texts --------------------------------------
    def _put(self, rel: str, text: str) -> None:
        p = self.root / rel
        for bad in self.unreadable:
            if rel.endswith(bad):
                if p.is_file():
                    p.unlink()
                p.mkdir(parents=True, exist_ok=True)
                return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, p)

    def write(self) -> None:
        for i, (name, _type, kind) in enumerate(ZONES):
            self._put(f"sys/class/thermal/thermal_zone{i}/type", name)
            self._put(f"sys/class/thermal/thermal_zone{i}/temp", self._fmt_temp(self._zone_temp(kind)))
        v = self.voltage_v
        amps = self.power_w / v
        if self.charging:
            amps = -1.0 * 1.0  # 1 A into the battery
        cur = amps * self.current_sign * (1000 if self.current_unit == "mA" else 1e6)
        bat = "sys/class/power_supply/battery/"
        self._put(bat + "current_now", str(round(cur)))
        self._put(bat + "voltage_now", str(round(v * 1e6)))
        self._put(bat + "capacity", str(round(self.level)))
        self._put(bat + "status", "Charging" if self.charging else "Discharging")
        self._put(bat + "temp", str(round(self.t_batt * 10)))
        self._put(bat + "present", "1")
        self._put(bat + "technology", "Li-ion")
        self._put(bat + "health", "Good")
        cpus = []
        for cl in CLUSTERS:
            cpus += cl["cpus"]
        self._put("sys/devices/system/cpu/possible", f"0-{max(cpus)}")
        self._put("sys/devices/system/cpu/present", f"0-{max(cpus)}")
        self._put("sys/devices/system/cpu/online", f"0-{max(cpus)}")
        busy = self.util > 0.2
        for ci, cl in enumerate(CLUSTERS):
            fmax = cl["max_khz"]
            if ci > 0 and self.t_soc > 60:
                fmax = int(fmax * 0.7)
            rel = ",".join(map(str, cl["cpus"]))
            for cpu in cl["cpus"]:
                base = f"sys/devices/system/cpu/cpu{cpu}/"
                self._put(base + "cpufreq/scaling_cur_freq", str(fmax if busy else cl["min_khz"]))
                self._put(base + "cpufreq/cpuinfo_max_freq", str(cl["max_khz"]))
                self._put(base + "cpufreq/cpuinfo_min_freq", str(cl["min_khz"]))
                self._put(base + "cpufreq/scaling_max_freq", str(fmax))
                self._put(base + "cpufreq/related_cpus", " ".join(map(str, cl["cpus"])))
                self._put(base + "topology/cluster_id", str(ci))
                self._put(base + "topology/core_siblings_list", rel)
        self._write_dumpsys()

    def _write_dumpsys(self) -> None:
        temps = []
        for name, htype, kind in ZONES:
            t = self._zone_temp(kind)
            st = self.status if kind == "soc" else 0
            temps.append(f"\tTemperature{{mValue={t:.1f}, mType={htype}, mName={name}, mStatus={st}}}")
        thermal = "\n".join([
            "IsStatusOverride: false",
            "ThermalEventListeners:",
            "\tcallbacks: 1",
            "\tkilled: false",
            "\tbroadcasts count: -1",
            "ThermalStatusListeners:",
            "\tcallbacks: 1",
            "\tkilled: false",
            "\tbroadcasts count: -1",
            f"Thermal Status: {self.status}",
            "Cached temperatures:",
            *temps,
            "HAL Ready: true",
            "HAL connection:",
            "\tSimulatedThermalHAL (SwapLab virtual device) connected: yes",
            "Current temperatures from HAL:",
            *temps,
            "Current cooling devices from HAL:",
            "\tCoolingDevice{mValue=0, mType=2, mName=battery}",
        ])
        v = self.voltage_v
        battery = "\n".join([
            "Current Battery Service state:",
            "  AC powered: false",
            f"  USB powered: {'true' if self.charging else 'false'}",
            "  Wireless powered: false",
            "  Max charging current: 500000",
            "  Max charging voltage: 5000000",
            f"  Charge counter: {int(4500000 * self.level / 100)}",
            f"  status: {2 if self.charging else 3}",
            "  health: 2",
            "  present: true",
            f"  level: {round(self.level)}",
            "  scale: 100",
            f"  voltage: {int(v * 1000)}",
            f"  temperature: {round(self.t_batt * 10)}",
            "  technology: Li-ion",
        ])
        self._put(".swaplab/dumpsys/thermalservice", thermal)
        self._put(".swaplab/dumpsys/battery", battery)

    def snapshot(self) -> dict:
        return {"simulated": True, "t_soc_c": round(self.t_soc, 3), "t_battery_c": round(self.t_batt, 3),
                "thermal_status": self.status, "util_cores": round(self.util, 3),
                "power_w": round(self.power_w, 3), "battery_pct": round(self.level, 3),
                "charging": self.charging}

    # --- thread -------------------------------------------------------------------
    def tick(self) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        self.step(dt, self._cpu_seconds_delta())
        self.write()

    def start(self) -> None:
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="swaplab-sensor-sim", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception as e:  # noqa: BLE001 - never let the simulation kill the device
                log.warning("sensor simulation tick failed: %r", e)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
