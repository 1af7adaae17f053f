"""Device health during a run (harness.fleet.health): a device-bound test that fails
because its device dropped (DeviceDisconnected) gets the device reconnected once and the
test run again; after a second drop, or when the device does not come back, the device
is offline: its remaining tests skip naming it, the other devices go on. Every drop,
reconnect and retry lands in the record's device entry (`health`) as it happens, and the
report's device-health table shows them.

On a parallel run this runs on the worker that holds the device (all its tests are there).
"""

from __future__ import annotations

import pytest
from _pytest.runner import runtestprotocol

from harness.devices.base import DeviceDisconnected, DeviceError
from harness.fixtures import LAB_KEY
from harness.fleet.health import DeviceHealth
from harness.record.run_record import utc_now

_DROPPED = pytest.StashKey[str]()
_HEALTH = pytest.StashKey[dict]()


def device_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "device" in callspec.params:
        return callspec.params["device"]
    return None


def health_of(config: pytest.Config, serial: str) -> DeviceHealth:
    table = config.stash.setdefault(_HEALTH, {})
    if serial not in table:
        table[serial] = DeviceHealth(serial)
    return table[serial]


def was_dropped(call) -> bool:
    return call.excinfo is not None and call.excinfo.errisinstance(DeviceDisconnected)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if was_dropped(call):
        item.stash[_DROPPED] = str(call.excinfo.value)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    serial = device_of(item)
    table = item.config.stash.get(_HEALTH, {})
    if serial is not None and serial in table and table[serial].offline:
        pytest.skip(table[serial].skip_reason())


def _forget_failed_fixtures(item: pytest.Item) -> None:
    """A fixture that failed because the device dropped (e.g. the session-scoped
    swap_runner's push) keeps its exception cached for the session; the retry must run it
    again on the reconnected device."""
    item._initrequest()  # FixtureDef.finish only reads the request's node
    for defs in item._fixtureinfo.name2fixturedefs.values():
        for fd in defs:
            cached = getattr(fd, "cached_result", None)
            if cached is not None and len(cached) > 2 and cached[2] is not None:
                fd.finish(item._request)


def _after_drop(item: pytest.Item, serial: str, message: str) -> bool:
    """Count the drop; reconnect once. True: run the test again."""
    lab = item.config.stash[LAB_KEY]
    h = health_of(item.config, serial)
    retry = False
    if h.dropped(utc_now(), item.nodeid, message):
        try:
            how = lab.assignment(serial).device.reconnect()
        except DeviceError as e:
            h.note(utc_now(), "reconnect failed", item.nodeid, str(e))
            message = f"{message}; reconnect failed: {e}"
        else:
            h.reconnected(utc_now(), item.nodeid, how)
            retry = True
    if not retry:
        h.go_offline(utc_now(), item.nodeid, message)
    lab.progress(f"[swaplab] {serial}: dropped during {item.nodeid}; "
                 + ("reconnected, running the test again" if retry else
                    "offline for the rest of the run, its remaining tests skip"))
    try:
        lab.record.add_device(serial, {"health": h.as_record()})
    except Exception as e:  # noqa: BLE001 - the record must never break a test run
        lab.warn(f"[swaplab] could not record the health of {serial}: {e}")
    return retry


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """pytest's own protocol for a device-bound test, run a second time after a drop."""
    serial = device_of(item)
    if serial is None or item.config.stash.get(LAB_KEY, None) is None:
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    dropped = item.stash.get(_DROPPED, None)
    if dropped is not None:
        del item.stash[_DROPPED]
        if _after_drop(item, serial, dropped):
            _forget_failed_fixtures(item)  # runtestprotocol makes a fresh request itself
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            dropped = item.stash.get(_DROPPED, None)
            if dropped is not None:
                del item.stash[_DROPPED]
                _after_drop(item, serial, dropped)
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
