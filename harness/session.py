"""State of one lab session: profiles, discovered devices and their profiles, the run
record, prepared runners. Created by the plugin at configure time; everything expensive
(discovery, the record, builds) happens lazily, only when device-bound tests exist."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path

from harness import REPO_ROOT, cache_root
from harness.devices import DiscoveryOptions, DiscoveryResult, discover_devices
from harness.devices.android.preflight import check_gates
from harness.devices.base import Device
from harness.devices.device_lease import OnDeviceLease, on_device_lease
from harness.devices.lease import DeviceBusy, DeviceLease
from harness.files import slug
from harness.history.compare import Comparison, finish_run
from harness.history.store import history_db
from harness.inputs.sets import lab_inputs
from harness.profiles import Profile, RunSettings, load_profiles, match_profile
from harness.record.environment import collect
from harness.record.health import HealthMonitor
from harness.record.run_record import RunRecord, new_run_id, update_latest, utc_now
from harness.report import write_reports
from harness.runner.invoke import prepare, runner_argv
from harness.runner.settings import runner_settings
from harness.terminal import printable

UNMATCHED = Profile(name="(no profile)", marker="", description="no profile matched",
                    platform="linux", match={}, targets={}, run=RunSettings(), virtual={},
                    path=Path("-"))


@dataclasses.dataclass
class Assignment:
    device: Device
    profile: Profile | None
    reason: str


class LabSession:
    def __init__(self, *, profiles_dir: Path, models_dir: Path, out_root: Path,
                 device_filter: list[str] | None = None, baseline: str | None = None,
                 discovery: DiscoveryOptions | None = None,
                 progress: Callable[[str], None] = print,
                 warn: Callable[[str], None] | None = None, lease_wait_s: float = 0.0) -> None:
        self.profiles_dir = Path(profiles_dir)
        self.models_dir = Path(models_dir)
        self.out_root = Path(out_root)
        self.device_filter = [d for d in (device_filter or []) if d] or ["all"]
        #: how long to wait for a device another run holds (harness.devices.lease)
        self.lease_wait_s = lease_wait_s
        self._leases: dict[str, DeviceLease] = {}
        #: leases held on the devices themselves (other hosts see them; device_lease.py)
        self._device_leases: dict[str, OnDeviceLease] = {}
        self._health: HealthMonitor | None = None
        #: on a pytest-xdist worker (harness.fleet): (run folder, run id, worker id) of
        #: the controller's run this process adds to; None: this process owns its run
        self._joined: tuple[Path, str, str] | None = None
        self._run_id: str | None = None  # reserve_run()
        self.baseline = baseline
        self.discovery_options = discovery or DiscoveryOptions(
            work_root=str(cache_root() / "devices"))
        self.progress = progress
        self.warn = warn or progress
        self.profiles = load_profiles(self.profiles_dir)  # ProfileError surfaces at startup
        self._discovery: DiscoveryResult | None = None
        self._assignments: list[Assignment] | None = None
        self._record: RunRecord | None = None
        self._prepared: dict[str, object] = {}
        self._registered: set[str] = set()
        self._gates: dict[str, dict] = {}
        self._inputs = None
        self.report_path: Path | None = None
        #: record["comparison"] of the finished run (harness.history.compare), None before
        self.comparison: Comparison | None = None

    # --- devices -----------------------------------------------------------------------
    def discover(self) -> DiscoveryResult:
        if self._discovery is None:
            self._discovery = discover_devices(self.discovery_options, warn=self.warn)
        return self._discovery

    def assignments(self) -> list[Assignment]:
        """Every discovered device with its profile (None: nothing matched)."""
        if self._assignments is None:
            out = []
            for d in self.discover().devices:
                profile, reason = match_profile(d, self.profiles)
                out.append(Assignment(d, profile, reason))
            self._assignments = out
        return self._assignments

    def selected(self) -> list[Assignment]:
        """Devices chosen by --device (serial, name or "all"); raises ValueError naming
        the devices found when a requested one is not there."""
        found = self.assignments()
        if "all" in self.device_filter:
            return list(found)
        chosen: list[Assignment] = []
        for want in self.device_filter:
            hits = [a for a in found if want == a.device.serial
                    or want.lower() == a.device.name.lower()]
            if not hits:
                raise ValueError(f"--device {want!r}: no such device. "
                                 + self.found_devices_text())
            chosen += [h for h in hits if h not in chosen]
        return chosen

    def assignment(self, serial: str) -> Assignment:
        for a in self.assignments():
            if a.device.serial == serial:
                return a
        raise KeyError(serial)

    def found_devices_text(self) -> str:
        lines = self.found_devices_lines()
        return "Devices found: " + ("; ".join(lines) if lines else "none")

    def found_devices_lines(self) -> list[str]:
        lines = []
        for a in self.assignments():
            d = a.device
            prof = (f"profile {a.profile.name} (marker {a.profile.marker}; {a.reason})"
                    if a.profile else "no matching profile")
            lines.append(f"{d.serial} [{d.kind}, {d.name}, {d.abi}] -> {prof}")
        for backend, note in sorted(self.discover().notes.items()):
            lines.append(f"backend {backend}: {note}")
        return [printable(line) for line in lines]  # device strings reach a terminal

    # --- record ------------------------------------------------------------------------
    @property
    def has_record(self) -> bool:
        return self._record is not None

    def reserve_run(self) -> tuple[Path, str]:
        """(run folder, run id) of the run this session will record, before the record
        exists (a pytest-xdist controller tells its workers at their start)."""
        if self._record is not None:
            return self._record.run_dir, self._record.run_id
        self._run_id = self._run_id or new_run_id()
        return self.out_root / "runs" / self._run_id, self._run_id

    def join_run(self, run_dir: Path, run_id: str, worker: str) -> None:
        """Add to another process's run (a pytest-xdist worker to its controller's): the
        record is this worker's journal in that run's folder; `finish` leaves the run,
        its history entry and report to the controller."""
        self._joined = (Path(run_dir), run_id, worker)

    @property
    def record(self) -> RunRecord:
        if self._record is None and self._joined is not None:
            self._record = RunRecord.for_worker(*self._joined)
        if self._record is None:
            self._record = RunRecord.create(self.out_root, collect(REPO_ROOT, self.models_dir),
                                            baseline=self.baseline, run_id=self._run_id)
            self._health = HealthMonitor().start()
            self.progress(f"[swaplab] run {self._record.run_id}: recording to "
                          f"{self._record.path}")
        return self._record

    def hold(self, serial: str) -> None:
        """Take the device's lease for this run (once); raises DeviceBusy naming the run
        that holds it when it is not free within `lease_wait_s`."""
        if serial in self._leases:
            return
        lease = DeviceLease(serial, self.record.run_id, cache_root() / "leases", since=utc_now())
        if self.lease_wait_s > 0:
            self.progress(f"[swaplab] {serial}: waiting up to {self.lease_wait_s:g} s for the "
                          "device if another run holds it")
        lease.acquire(self.lease_wait_s)
        self._leases[serial] = lease
        self.record.add_device(serial, {"lease": lease.describe()})
        on_device = on_device_lease(self.assignment(serial).device, self.record.run_id,
                                    since=utc_now())
        if on_device is not None:
            try:
                on_device.acquire(self.lease_wait_s)
            except DeviceBusy:
                self._leases.pop(serial).release()
                raise
            self._device_leases[serial] = on_device
            self.record.add_device(serial, {"device_lease": on_device.describe()})

    def release_devices(self) -> None:
        for lease in [*self._device_leases.values(), *self._leases.values()]:
            lease.release()
        self._device_leases.clear()
        self._leases.clear()

    def register_device(self, a: Assignment) -> None:
        if a.device.serial in self._registered:
            return
        self._registered.add(a.device.serial)
        info = a.device.describe()
        info["profile"] = a.profile.name if a.profile else None
        info["profile_match"] = a.reason
        # this host's CPU runs the device's programs: the run's health applies to it
        info["cpu_shared"] = a.device.kind in ("local", "virtual")
        self.record.add_device(a.device.serial, info)

    def check_gates(self, serial: str, *, test: str = "", power_test: bool = False):
        """Android gates before measuring (harness.devices.android.preflight: battery level, charging
        for power tests, thermal status / cool-down) with the profile's settings. Returns
        the GateResult (`ok` False: skip with `skip_reason`), or None for devices without
        those gates (this host, iOS). Each check lands in the record's device entry."""
        a = self.assignment(serial)
        d = a.device
        if d.platform != "android" or not all(
                hasattr(d, m) for m in ("battery_state", "thermal_service", "read_sensors")):
            return None
        run = (a.profile or UNMATCHED).run
        if run.cooldown_temperature_c is not None or power_test:
            self.progress(f"[swaplab] {serial}: checking gates (battery >= "
                          f"{run.min_battery_pct:g}%, thermal state"
                          + (f", <= {run.cooldown_temperature_c:g} C"
                             if run.cooldown_temperature_c is not None else "") + ")")
        res = check_gates(d, min_battery_pct=run.min_battery_pct, power_test=power_test,
                          cooldown_temperature_c=run.cooldown_temperature_c,
                          cooldown_timeout_s=run.cooldown_timeout_s, warn=self.warn)
        entry = {"test": test, "time": utc_now(), "ok": res.ok, "power_test": power_test,
                 "skip_reason": res.skip_reason, "warnings": list(res.warnings),
                 "facts": dict(res.facts)}
        gates = self._gates.setdefault(serial, {"checks": 0, "skipped": [], "warnings": []})
        gates["checks"] += 1
        gates["last"] = entry
        if not res.ok:
            gates["skipped"].append({"test": test, "reason": res.skip_reason})
        gates["warnings"] += [w for w in res.warnings if w not in gates["warnings"]]
        info = {"gates": copy.deepcopy(gates)}
        for key in ("debuggable", "emulator", "virtual", "simulated"):
            if res.facts.get(key) is not None:
                info[key] = res.facts[key]
        self.record.add_device(serial, info)
        return res

    def artifacts_dir(self, serial: str, nodeid: str) -> Path:
        name = nodeid.split("::", 1)[-1]
        d = (self.record.run_dir / "artifacts" / slug(serial, max_len=200)
             / slug(name, max_len=100, empty="test"))
        d.mkdir(parents=True, exist_ok=True)
        return d

    # --- runner ------------------------------------------------------------------------
    def inputs(self):
        if self._inputs is None:
            self._inputs = lab_inputs(self.models_dir, cache_root() / "inputs",
                                      progress=self.progress)
        return self._inputs

    def prepared_runner(self, serial: str):
        """swap_runner on the device, prepared once per session."""
        if serial not in self._prepared:
            a = self.assignment(serial)
            self.register_device(a)
            settings = (a.profile or UNMATCHED).run
            prepared = prepare(a.device, settings, self.models_dir, self.inputs(),
                               progress=self.progress)
            # output folders on the device carry the run id: two runs never share one
            prepared = dataclasses.replace(prepared, out_prefix=f"out-{self.record.run_id}")
            self.record.add_runner_build(a.device.abi, prepared.build_info)
            self.record.add_device(serial, {"sync": prepared.describe_sync(),
                                            "runner_build": prepared.build_info,
                                            # the profile's runner settings, for
                                            # comparability (harness.runner.settings)
                                            "runner_settings": runner_settings(
                                                runner_argv(prepared), prepared.build_info)})
            self._prepared[serial] = prepared
        return self._prepared[serial]

    # --- end ---------------------------------------------------------------------------
    def finish(self, interrupted: bool = False) -> Path | None:
        """Close the record, write the report and benchmarks.json, update `latest`."""
        if self._record is None:
            return None
        self.release_devices()
        if self._joined is not None:  # a worker: the controller finishes the run
            self._record.close()
            return None
        self._record.merge_workers()  # a parallel run: what the workers measured
        if self._health is not None:
            health = self._health.stop()
            # devices on this host's CPU measuring at once (harness.fleet): a verdict
            # against a run where that differs is unknown (harness.stats.trust)
            fleet = self._record.data["environment"].get("fleet") or {}
            health["host_cpu_parallel"] = fleet.get("host_cpu_parallel", 1)
            self._record.set_environment("health", health)
            self._health = None
        self._record.finish("interrupted" if interrupted else "finished")
        with contextlib.suppress(OSError):
            update_latest(self.out_root, self._record.run_dir)
        self.compare_with_baseline()
        self.report_path = write_reports(self._record.run_dir)
        return self.report_path

    def compare_with_baseline(self) -> Comparison | None:
        """Import the finished record into `<out>/history.sqlite`, gate it against
        --baseline (if given) and the absolute targets, keep the verdicts in the record."""
        if self._record is None:
            return None
        try:
            self.comparison = finish_run(self._record.run_dir, db=history_db(self.out_root),
                                         baseline_spec=self.baseline, profiles=self.profiles,
                                         git_cwd=REPO_ROOT)
        except Exception as e:  # noqa: BLE001 - the record and report come first
            self.comparison = Comparison(
                baseline_spec=self.baseline,
                error=f"history/comparison failed: {type(e).__name__}: {e}")
            self.warn(f"[swaplab] {self.comparison.error}")
        self._record.set_field("comparison", self.comparison.as_record())
        return self.comparison
