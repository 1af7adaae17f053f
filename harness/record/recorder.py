"""Measurements of one test on one device: name, unit, direction, raw samples, summary
and the verdict against the device profile's target. Each one goes to the run record
as soon as it is made."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.profiles import Profile
from harness.record.run_record import RunRecord, utc_now
from harness.record.units import format_value, unit_of
from harness.runner.settings import merge_settings, runner_settings
from harness.stats.descriptive import statistic, summarize, verdict

#: target verdict on a device whose CPU is emulated, for targets in EMULATED_UNITS
NOT_CHECKED = "not checked"
#: units of targets that an emulated CPU makes meaningless: time and memory (the
#: detection rate is what the pipeline computes, the same under emulation)
EMULATED_UNITS = ("ms", "mb")


@dataclasses.dataclass
class Measurement:
    test: str
    device: str
    profile: str | None
    metric: str
    unit: str
    direction: str
    samples: list[float]
    summary: dict
    target: dict | None
    time: str
    extra: dict

    @property
    def failed(self) -> bool:
        return bool(self.target and self.target["verdict"] == "fail")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def failure_message(self, device_name: str = "") -> str:
        t = self.target or {}
        op = "<=" if self.direction == "lower" else ">="
        variant = f" [{self.extra['variant']}]" if self.extra.get("variant") else ""
        name = f" ({device_name})" if device_name else ""
        return (f"device {self.device!r}{name}, profile {self.profile}: {self.metric}{variant} "
                f"{t.get('statistic')} = {format_value(t.get('measured'), self.unit)}, "
                f"target {t.get('key')} {op} {format_value(t.get('value'), self.unit)}")


class Recorder:
    """Given to each test as the `recorder` fixture."""

    def __init__(self, record: RunRecord, test: str, device: str, device_name: str,
                 profile: Profile | None, cpu_emulation: str | None = None) -> None:
        self.record = record
        #: what emulates the device's CPU (Device.cpu_emulation): its time and memory
        #: targets are not checked, since they would judge the emulator, not the phone
        self.cpu_emulation = cpu_emulation
        self.test = test
        self.device = device
        self.device_name = device_name
        self.profile = profile
        self.measurements: list[Measurement] = []
        #: how the runner ran in this test (harness.runner.settings), kept with every
        #: measurement as extra["runner"]: runs with other settings are not comparable
        self.runner_settings: dict | None = None

    def note_runner(self, argv: Sequence[str], build_info: Mapping[str, Any] | None) -> None:
        """A runner run of this test: its settings go with the measurements recorded next."""
        self.runner_settings = merge_settings(self.runner_settings,
                                              runner_settings(argv, build_info))

    def measure(self, metric: str, samples: Iterable[float] | float, *,
                unit: str | None = None, direction: str = "lower",
                check_target: bool = True, **extra: Any) -> Measurement:
        """Record a metric. The profile's target on `metric` (if any and `check_target`)
        gives a verdict; `assert_targets()` fails the test on failed verdicts.
        `extra` is kept with the measurement (e.g. variant="mode=tiny")."""
        if isinstance(samples, (int, float)):
            samples = [samples]
        values = [float(v) for v in samples]
        values = [v for v in values if math.isfinite(v)]
        if direction not in ("lower", "higher"):
            raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
        summary = summarize(values)
        target = None
        found = self.profile.target_for(metric) if (self.profile and check_target) else None
        if found is not None:
            spec, value = found
            measured = statistic(summary, spec.statistic)
            target = {"key": spec.key, "statistic": spec.statistic, "value": value,
                      "measured": measured, "verdict": verdict(measured, value, spec.direction)}
            if self.cpu_emulation and spec.unit in EMULATED_UNITS:
                target.update(verdict=NOT_CHECKED, reason=f"not checked: the device's CPU is "
                              f"emulated ({self.cpu_emulation}); the target is the phone's")
            direction = spec.direction
        if self.runner_settings and "runner" not in extra:
            extra["runner"] = dict(self.runner_settings)
        m = Measurement(self.test, self.device, self.profile.name if self.profile else None,
                        metric, unit if unit is not None else unit_of(metric), direction, values,
                        summary, target, utc_now(), dict(extra))
        self.measurements.append(m)
        self.record.add_measurement(m.as_dict())
        return m

    def artifact(self, kind: str, path: Path | str, **extra: Any) -> None:
        self.record.add_artifact(self.device, self.test, kind, path, **extra)

    def failures(self) -> list[Measurement]:
        return [m for m in self.measurements if m.failed]

    def assert_targets(self) -> None:
        """Fail with one line per missed target: device, metric, value and target."""
        failed = self.failures()
        if failed:
            lines = [m.failure_message(self.device_name) for m in failed]
            raise AssertionError("target missed:\n  " + "\n  ".join(lines))
