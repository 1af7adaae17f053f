"""The SwapLab pytest plugin (entry point `pytest11: swaplab`).

Options, markers, device parametrization and the end-of-session record + report. A test
is device-bound when it uses the `device` fixture (directly or through `swap_runner`,
`recorder`, `swap`, ...): it is parametrized over the selected devices (ids = serial)
and each item gets its device profile's marker plus `swaplab_device`, so
`pytest -m snapdragon6` selects exactly the tests bound to such devices.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from pathlib import Path

import pytest

from harness import REPO_ROOT, cache_root
from harness.devices import DeviceDisconnected, DiscoveryOptions
from harness.devices.android.stf_run import claim_for_run
from harness.fixtures import (  # noqa: F401  (fixtures provided by the plugin)
    LAB_KEY,
    artifacts_dir,
    device,
    lab,
    profile,
    recorder,
    swap,
    swap_runner,
    swaplab_gates,
)
from harness.history.compare import Comparison
from harness.profiles import ProfileError
from harness.session import LabSession
from harness.terminal import printable

#: devices in parallel on pytest-xdist, device health (docs/fleet.md)
pytest_plugins = ("harness.fleet.controller", "harness.fleet.retry")

_NO_MATCH_KEY = pytest.StashKey[list]()
_DEVICE_OF_KEY = pytest.StashKey[dict]()
_SETUP_S_KEY = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("swaplab", "SwapLab device lab")
    g.addoption("--device", action="append", default=[], metavar="SERIAL|NAME|all",
                help="device(s) to run on: serial, name or 'all' (default: all discovered; "
                     "with no phone attached that is this host). Repeat or comma-separate.")
    g.addoption("--lab-out", default=None, metavar="DIR",
                help="where run folders go (default: reports/ under the rootdir)")
    g.addoption("--baseline", default=None, metavar="RUN",
                help="compare against this run: run id, run folder, 'latest', branch "
                     "('main' = latest run on main) or git ref; a regression exits 1")
    g.addoption("--profiles-dir", default=None, metavar="DIR",
                help="device profile folder (default: device_profiles/)")
    g.addoption("--models-dir", default=None, metavar="DIR",
                help="model pack folder (default: models/)")
    g.addoption("--adb-server", action="append", default=[], metavar="HOST:PORT",
                help="also discover devices on this remote adb server")
    g.addoption("--adb-port", type=int, default=None, help="local adb server port")
    g.addoption("--usbmux", default=None, metavar="SOCK|HOST:PORT",
                help="usbmuxd for iOS devices (default: $USBMUXD_SOCKET_ADDRESS, else the "
                     "system's)")
    g.addoption("--backends", default=None, metavar="LIST",
                help="device backends to ask, e.g. 'local,android' (default: "
                     "$SWAPLAB_BACKENDS or all)")
    g.addoption("--lease-wait", type=float, default=0.0, metavar="SECONDS",
                help="wait this long for a device another run holds, then skip its tests "
                     "naming that run (default 0: skip at once)")
    g.addoption("--no-local-device", action="store_true", default=False,
                help="do not offer this host as a device")
    g.addoption("--ab-runner", default=None, metavar="PATH|GITREF",
                help="A/B interleaved mode (suites/test_ab.py): the baseline swap_runner "
                     "that alternates with this build on each device: a binary, or a git "
                     "ref whose runner/ is built (e.g. main, HEAD~1)")
    g.addoption("--ab-rounds", type=int, default=None, metavar="N",
                help="A/B rounds (ABBA order; >= 8 for a verdict; more rounds, more "
                     "power on a noisy device: docs/statistics.md); default: the "
                     "profile's [run] ab_rounds (40 unless set)")
    g.addoption("--ab-frames", type=int, default=10, metavar="N",
                help="measured frames per arm per A/B round, default 10")
    g.addoption("--stf", default=None, metavar="URL",
                help="claim the devices of DeviceFarmer STF at URL that match the selected "
                     "profiles (-m MARKER, else every Android profile), adb-connect them, "
                     "give them back at the end; token from $SWAPLAB_STF_TOKEN (docs/stf.md)")
    g.addoption("--stf-max", type=int, default=0, metavar="N",
                help="claim at most N devices from STF (default 0: every free match)")


def _resolve(config: pytest.Config, value: str | None, default_name: str,
             must_have: str | None = None) -> Path:
    if value:
        p = Path(value)
        return p if p.is_absolute() else Path(config.invocation_params.dir) / p
    local = config.rootpath / default_name
    if local.is_dir() and (must_have is None or (local / must_have).exists()):
        return local
    return REPO_ROOT / default_name


def _writer(config: pytest.Config):
    def write(msg: str) -> None:
        capman = config.pluginmanager.getplugin("capturemanager")
        tr = config.pluginmanager.getplugin("terminalreporter")
        cm = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        msg = printable(msg, keep_newlines=True)  # progress lines carry device strings
        with cm:
            if tr is not None:
                tr.write_line(msg)
            else:
                print(msg, flush=True)
    return write


def lab_session_for(config: pytest.Config) -> LabSession:
    """The LabSession of this pytest run, made once from the options (also early, for
    `-n auto`, which counts devices before pytest_configure)."""
    if LAB_KEY in config.stash:
        return config.stash[LAB_KEY]
    devices = [d.strip() for opt in config.getoption("device") or [] for d in opt.split(",")]
    try:
        session = LabSession(
            profiles_dir=_resolve(config, config.getoption("profiles_dir"), "device_profiles"),
            models_dir=_resolve(config, config.getoption("models_dir"), "models",
                                must_have="manifest.json"),
            out_root=_resolve(config, config.getoption("lab_out"), "reports")
            if config.getoption("lab_out") else config.rootpath / "reports",
            device_filter=devices,
            baseline=config.getoption("baseline"),
            discovery=DiscoveryOptions(
                remote_adb_servers=list(config.getoption("adb_server") or []),
                adb_port=config.getoption("adb_port"),
                usbmux=config.getoption("usbmux"),
                include_local=not config.getoption("no_local_device"),
                backends=[b.strip() for b in config.getoption("backends").split(",")]
                if config.getoption("backends") else None),
            progress=_writer(config),
            lease_wait_s=max(0.0, float(config.getoption("lease_wait") or 0.0)),
        )
    except ProfileError as e:
        raise pytest.UsageError(f"invalid device profile: {e}") from None
    if session.discovery_options.work_root is None:
        session.discovery_options.work_root = str(cache_root() / "devices")
    config.stash[LAB_KEY] = session
    # --stf: the farm's phones are claimed before the first discovery, which for `-n auto`
    # (one worker per device) is before pytest_configure.
    claim_for_run(config, session, _writer(config))
    return session


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "swaplab_device: a test bound to a lab device (added by SwapLab)")
    config.addinivalue_line(
        "markers", "swaplab_power: a power measurement (on Android the charging gate "
                   "applies; suites/test_power.py counts as one)")
    session = lab_session_for(config)
    for p in session.profiles.values():
        config.addinivalue_line(
            "markers", f"{p.marker}: tests bound to devices of profile {p.name} "
                       f"({p.description})")
    config.stash[LAB_KEY] = session
    config.stash[_DEVICE_OF_KEY] = {}
    _catch_sigterm(config)
    if session.device_filter != ["all"] and not config.option.help:
        try:  # an explicit --device is checked at once, with the devices found
            session.selected()
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM (how CI cancels a job), raised where the main thread is. pytest treats it
    as an interruption: the running test's finally blocks stop what it started on the
    device, and the session still finishes the record ("interrupted"), renders the
    report, benchmarks.json and trace.json, and exits non-zero."""


_PREVIOUS_SIGTERM = pytest.StashKey[object]()


def _catch_sigterm(config: pytest.Config) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread

    def on_sigterm(signum, frame):
        # one is enough: a second SIGTERM while the record is finished is ignored
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(f"received signal {signum} (SIGTERM)")

    config.stash[_PREVIOUS_SIGTERM] = signal.signal(signal.SIGTERM, on_sigterm)


def pytest_report_header(config: pytest.Config) -> list[str]:
    ls = config.stash.get(LAB_KEY, None)
    if ls is None:
        return []
    return [(f"swaplab: profiles {ls.profiles_dir} ({', '.join(sorted(ls.profiles))}); "
            f"models {ls.models_dir}; out {ls.out_root}")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" not in metafunc.fixturenames:
        return
    lab_session: LabSession = metafunc.config.stash[LAB_KEY]
    try:
        selected = lab_session.selected()
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    params = []
    for a in selected:
        marks = [pytest.mark.swaplab_device]
        if a.profile is not None:
            marks.append(getattr(pytest.mark, a.profile.marker))
        params.append(pytest.param(a.device.serial, id=a.device.serial, marks=marks))
    metafunc.parametrize("device", params, indirect=True, scope="session")


def _device_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "device" in callspec.params:
        return callspec.params["device"]
    return None


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]):
    bound_before = sum(1 for i in items if _device_of(i) is not None)
    result = yield
    lab_session = config.stash.get(LAB_KEY, None)
    device_of = config.stash[_DEVICE_OF_KEY]
    for i in items:
        serial = _device_of(i)
        if serial is not None:
            device_of[i.nodeid] = serial
    markexpr = config.getoption("markexpr", "") or ""
    if lab_session is None or not markexpr:
        return result
    bound_after = len(device_of)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", markexpr))
    if not bound_before and not any(p.marker in words for p in lab_session.profiles.values()):
        return result  # nothing device-related asked for: do not discover devices
    connected = {a.profile.name for a in lab_session.selected() if a.profile}
    missing = [p for p in lab_session.profiles.values()
               if p.marker in words and p.name not in connected]
    if missing or (bound_before and not bound_after):
        lines = []
        for p in missing:
            lines.append(f"-m {markexpr!r}: marker {p.marker!r} (profile {p.name}: "
                         + f"{p.description}) matches no connected device.")
        if bound_before and not bound_after and not missing:
            lines.append(f"-m {markexpr!r} selects no device-bound test.")
        lines.append("Devices found and their profiles:")
        lines += ["  " + line for line in lab_session.found_devices_lines()] or ["  (none)"]
        config.stash[_NO_MATCH_KEY] = lines
    return result


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    return list(config.stash.get(_NO_MATCH_KEY, []))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    lab_session = item.config.stash.get(LAB_KEY, None)
    serial = _device_of(item)
    if lab_session is None or serial is None:
        return report
    if report.when == "setup":
        item.stash[_SETUP_S_KEY] = report.duration
    final = (report.when == "call" or (report.when == "setup" and report.outcome != "passed")
             or (report.when == "teardown" and report.failed))
    if final:
        outcome = report.outcome
        if report.failed and report.when != "call":
            outcome = "error"
        if call.excinfo is not None and call.excinfo.errisinstance(DeviceDisconnected):
            outcome = "dropped"  # the device dropped; harness.fleet.retry decides what next
        message = ""
        if report.failed:
            text = report.longreprtext or ""
            crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
            message = (crash or text.strip().splitlines()[-1] if text.strip() else crash or "")
        elif report.skipped and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2])
        # the time the test held its device: its setup (the first one pushes the runner
        # and models) and its call
        duration = report.duration + (item.stash.get(_SETUP_S_KEY, 0.0)
                                      if report.when == "call" else 0.0)
        try:
            lab_session.record.add_test(item.nodeid, serial, outcome, duration, message[:2000])
        except Exception as e:  # noqa: BLE001 - the record must never break a test run
            lab_session.warn(f"[swaplab] could not record {item.nodeid}: {e}")
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    lab_session = session.config.stash.get(LAB_KEY, None)
    if lab_session is None:
        return
    if session.config.stash.get(_NO_MATCH_KEY, None) and exitstatus == pytest.ExitCode.OK \
            and session.testscollected and not session.items:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    if interrupted and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish the record and report first
    try:
        lab_session.finish(interrupted=interrupted)
    except Exception as e:  # noqa: BLE001 - say so, keep the record
        lab_session.warn(f"[swaplab] writing the report failed: {type(e).__name__}: {e}")
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    comparison = lab_session.comparison
    if comparison is not None and comparison.exit_status and \
            session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # regression vs --baseline


def _write_gate_summary(terminalreporter, comparison: Comparison) -> None:
    gate_lines = comparison.gate_lines
    base = comparison.baseline_run
    if not (comparison.error or gate_lines or base or comparison.ab):
        return
    title = (f"SwapLab gate vs baseline {base}" if base else
             "SwapLab gate (A/B interleaved)" if comparison.ab else
             "SwapLab gate (targets only)")
    terminalreporter.write_sep("=", title, red=bool(gate_lines), green=not gate_lines)
    if comparison.error:
        terminalreporter.write_line(f"baseline {comparison.baseline_spec!r}: "
                                    f"{comparison.error}", yellow=True)
    for line in gate_lines:
        terminalreporter.write_line(line, red=True)
    if (base or comparison.ab) and not gate_lines:
        terminalreporter.write_line("no regression: " + ", ".join(
            f"{n} {v}" for v, n in sorted(comparison.verdict_counts().items())))
    if comparison.ab_hint:
        terminalreporter.write_line(comparison.ab_hint, yellow=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    lab_session = config.stash.get(LAB_KEY, None)
    comparison = lab_session.comparison if lab_session is not None else None
    if comparison is not None:
        _write_gate_summary(terminalreporter, comparison)
    lines = config.stash.get(_NO_MATCH_KEY, None)
    if lines:
        terminalreporter.write_sep("=", "SwapLab: no device for the selected marker",
                                   yellow=True)
        for line in lines:
            terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_PREVIOUS_SIGTERM, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)
    lab_session = config.stash.get(LAB_KEY, None)
    if lab_session is None or lab_session.report_path is None:
        return
    path = lab_session.report_path
    with contextlib.suppress(ValueError):
        path = Path(os.path.relpath(path, Path.cwd())) if not os.path.relpath(
            path, Path.cwd()).startswith("..") else path
    tr = config.pluginmanager.getplugin("terminalreporter")
    line = f"SwapLab report: {path}"
    if tr is not None:
        tr.write_line(line)
    else:
        print(line)
