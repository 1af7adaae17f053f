"""The pytest-xdist side of a parallel lab run (`pytest suites -n auto`; docs/fleet.md).

The controller process owns the run: it creates the run folder and record when the first
worker starts, hands each worker the run (`workerinput["swaplab_run"]`), and at the end
merges what the workers journalled, imports one history entry, renders one report, prints
one `SwapLab report:` line and sets one exit status (harness.plugin's session hooks, which
run on the controller as on a plain run). Workers never finish, compare or report a run:
each appends its tests, measurements, artifacts and devices to `workers/<id>.journal` in
the run folder as they happen, so a worker that dies loses nothing it measured.

Scheduling: pytest-xdist's load-scope scheduler with one scope per device
(harness.fleet.scopes): all tests of a device run on one worker, in collection order, and
never on two workers at once; the device lease (harness.devices.lease) stops any other run.
`-n auto` starts one worker per device scope.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

from harness.fixtures import LAB_KEY
from harness.fleet import scopes as S
from harness.plugin import lab_session_for
from harness.session import LabSession

RUN_KEY = "swaplab_run"
_SCOPES = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("swaplab").addoption(
        "--host-cpu", choices=S.POLICIES, default="parallel",
        help="with -n: devices that run on this host's CPU (this host, virtual devices) "
             "each get a worker and measure at the same time ('parallel', default), or "
             "share one worker, one after another ('serial': no two load the host's "
             "cores at once). docs/fleet.md")


def is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and config.getoption("dist", "no") != "no" \
        and bool(config.getoption("tx", None))


def _wants_devices(config: pytest.Config) -> bool:
    """`-n auto` counts devices only for a lab run: tests under a `suites` folder, or
    devices asked for by --device or --stf (SwapLab's own tests keep xdist's one worker
    per CPU)."""
    if config.getoption("device") or config.getoption("stf", None):
        return True
    return any("suites" in Path(str(a).split("::", 1)[0]).parts for a in config.args)


def device_scopes(config: pytest.Config, lab: LabSession) -> dict[str, str]:
    """serial -> scope for the run's selected devices (computed once)."""
    if _SCOPES not in config.stash:
        try:
            selected = lab.selected()
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
        config.stash[_SCOPES] = S.device_scopes(
            [(a.device.serial, a.device.kind) for a in selected],
            config.getoption("host_cpu") or "parallel")
    return config.stash[_SCOPES]


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if not _wants_devices(config):
        return None  # xdist's own default: one worker per CPU
    return S.workers_for(device_scopes(config, lab_session_for(config)))


class DeviceScheduling(LoadScopeScheduling):
    """Load-scope scheduling with one scope per device (harness.fleet.scopes)."""

    def __init__(self, config: pytest.Config, log, scopes: dict[str, str]) -> None:
        super().__init__(config, log)
        self.device_scopes = scopes

    def _split_scope(self, nodeid: str) -> str:
        return S.scope_of(nodeid, self.device_scopes)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    lab = config.stash.get(LAB_KEY, None)
    if lab is None or config.getoption("dist") == "each":
        return None
    return DeviceScheduling(config, log, device_scopes(config, lab))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """Controller, per worker: the run it adds to."""
    lab = node.config.stash.get(LAB_KEY, None)
    if lab is None:
        return
    run_dir, run_id = lab.reserve_run()
    node.workerinput[RUN_KEY] = {"run_dir": str(run_dir), "run_id": run_id,
                                 "worker": node.gateway.id}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    """Controller: the run starts when the first worker has collected (as a plain run's
    starts with its first device-bound test; no test runs before every worker has
    collected): the run folder and record, with how the devices are spread."""
    config = node.config
    lab = config.stash.get(LAB_KEY, None)
    if lab is None or lab.has_record:
        return
    scopes = device_scopes(config, lab)
    kinds = [(a.device.serial, a.device.kind) for a in lab.selected()]
    lab.record.set_environment("fleet", {
        "workers": len(config.getoption("tx") or []), "scopes": scopes,
        "host_cpu": config.getoption("host_cpu"),
        "host_cpu_parallel": S.host_cpu_parallel(kinds, scopes)})


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report, sched) -> None:
    """A worker died in the middle of a test: the record says so (what the test measured
    before is in the worker's journal already)."""
    config = getattr(sched, "config", None)
    lab = config.stash.get(LAB_KEY, None) if config is not None else None
    if lab is None or not lab.has_record:
        return
    serial = S.serial_in_nodeid(crashitem, device_scopes(config, lab))
    lab.record.add_test(crashitem, serial, "error", 0.0, str(report.longrepr)[:2000])


@pytest.hookimpl(trylast=True)  # after harness.plugin made the LabSession
def pytest_configure(config: pytest.Config) -> None:
    """Worker: join the controller's run instead of starting one."""
    share = getattr(config, "workerinput", {}).get(RUN_KEY)
    lab = config.stash.get(LAB_KEY, None)
    if share and lab is not None:
        lab.join_run(Path(share["run_dir"]), share["run_id"], share["worker"])
