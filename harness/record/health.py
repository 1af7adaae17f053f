"""How healthy this host was while a run measured: CPU used by other processes, steal time.

A regression verdict between two runs means something only if both ran in like conditions.
On this 2-core host a neighbour busy on one core slowed frames by ~28%, which a verdict
reads as a regression. The monitor samples /proc/stat and the CPU time of this process
tree every few seconds; "other" CPU is all busy time minus ours (the runner and virtual
devices we start are ours). The record keeps the run's summary and its windows; the
comparison (harness.stats.trust) refuses to call a change between runs of different
health a regression.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat() -> tuple[float, float, float]:
    """(busy, steal, total) seconds of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    steal = fields[7] if len(fields) > 7 else 0
    total = sum(fields[:8])
    return (total - idle - steal) / CLK_TCK, steal / CLK_TCK, total / CLK_TCK


def _descendants_cpu_s(root: int) -> float:
    """CPU seconds of the live descendants of `root` (waited children are in rusage)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(rest[1]), []).append(int(d))
        cpu[int(d)] = (int(rest[11]) + int(rest[12])) / CLK_TCK
    total, todo = 0.0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime
            + _descendants_cpu_s(os.getpid()))


class HealthMonitor:
    """Samples every `interval_s` in a daemon thread from start() to stop()."""

    def __init__(self, interval_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self.cores = os.cpu_count() or 1
        self.windows: list[dict] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[float, float, float, float] | None = None
        self._t0 = 0.0

    def _sample(self) -> None:
        now = time.monotonic()
        busy, steal, _total = _proc_stat()
        own = _own_cpu_s()
        if self._last is not None:
            t, b0, s0, o0 = self._last
            wall = max(1e-6, now - t)
            other = max(0.0, (busy - b0) - (own - o0)) / wall
            self.windows.append({"t_s": round(t - self._t0, 1), "wall_s": round(wall, 2),
                                 "other_cpu_cores": round(other, 3),
                                 "steal_cores": round(max(0.0, steal - s0) / wall, 3)})
        self._last = (now, busy, steal, own)

    def start(self) -> HealthMonitor:
        self._t0 = time.monotonic()
        self._sample()

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self._sample()
                except (OSError, ValueError, IndexError):
                    pass  # /proc unreadable for a moment: that window is missing

        self._thread = threading.Thread(target=loop, name="swaplab-health", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
        try:
            self._sample()
        except (OSError, ValueError, IndexError):
            pass
        return self.summary()

    def summary(self) -> dict:
        """Time-weighted mean and worst window of the other processes' CPU and steal."""
        w = self.windows
        wall = sum(x["wall_s"] for x in w)
        mean = (lambda k: round(sum(x[k] * x["wall_s"] for x in w) / wall, 3)) if wall else \
            (lambda k: None)
        return {"cores": self.cores, "interval_s": self.interval_s,
                "other_cpu_cores_mean": mean("other_cpu_cores"),
                "other_cpu_cores_max": max((x["other_cpu_cores"] for x in w), default=None),
                "steal_cores_mean": mean("steal_cores"),
                "windows": w[-500:]}
