"""STF devices for one pytest run (`--stf URL`): claim before discovery, give back at the end.

The devices claimed are those matching the profiles the run selects: the Android profiles
`-m` can select (e.g. `-m snapdragon6`; `wanted_profiles`), without `-m` every one. The run
then uses the claimed devices only (plus those `--device` names): the adb server of an STF
provider host also sees the USB phones other users hold through STF.

Claiming happens in pytest_configure of the controller, never in a pytest-xdist worker:
workers find the claimed devices on the same adb server and take their serials from the
controller's environment ($SWAPLAB_STF_CLAIMED). Giving back is a config cleanup registered
before the first claim, so it runs on a normal end, on failure, on a usage error, and on
SIGTERM (harness.plugin turns SIGTERM into an interruption, as pytest does SIGINT; pytest
then unconfigures); SIGTERM and SIGINT during the release are ignored until every device is
back.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import threading
from collections.abc import Callable

import pytest

# pytest's own -m grammar (private module; pytest is pinned below 10 in pyproject.toml)
from _pytest.mark.expression import Expression

from harness.devices.android.stf import TOKEN_ENV, StfClaims, StfClient, StfError


def _matcher(truth: dict[str, bool]):
    """A marker matcher for Expression.evaluate: the truth of each name (kwargs: any)."""
    return lambda ident, /, **kwargs: truth.get(ident, False)


def wanted_profiles(config: pytest.Config, profiles) -> list[str]:
    """Names of the Android profiles whose devices `-m` can select: a device of profile P
    carries P's marker and no other profile's; every other marker in the expression may be
    on a test or not (`-m "snapdragon6 and not swaplab_power"` wants snapdragon6,
    `-m "not snapdragon865"` every Android profile but snapdragon865, `-m host` none).
    No `-m`: every Android profile."""
    android = sorted(p.name for p in profiles.values() if p.platform == "android")
    markexpr = (config.getoption("markexpr", "") or "").strip()
    if not markexpr:
        return android
    try:
        expr = Expression.compile(markexpr)
    except SyntaxError as e:
        raise pytest.UsageError(f"-m {markexpr!r}: {e}") from None
    markers = {p.marker for p in profiles.values()}
    free = sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", markexpr))
                  - markers - {"and", "or", "not", "True", "False", "None"})
    if len(free) > 12:  # too many to try every combination: keep every profile
        return android
    wanted = []
    for name in android:
        marker = profiles[name].marker
        for bits in itertools.product((False, True), repeat=len(free)):
            truth = dict(zip(free, bits, strict=True))
            truth.update({m: m == marker for m in markers})
            if expr.evaluate(_matcher(truth)):
                wanted.append(name)
                break
    return wanted


@contextlib.contextmanager
def _signals_ignored():
    """No SIGTERM or SIGINT may cut a release short: CI cancels with SIGINT and then
    SIGTERM a few seconds later (GitHub Actions), and either would raise in the middle of
    giving the devices back. Only the main thread may set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class StfRun:
    """The pytest side of one run's claims (registered as a plugin while it holds any)."""

    def __init__(self, claims: StfClaims, lab_session, write: Callable[[str], None]) -> None:
        self.claims = claims
        self.lab_session = lab_session
        self.write = write

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Before the record closes: which STF device each adb serial is (no token)."""
        if not self.lab_session.has_record:
            return
        for claim in self.claims.claims:
            if claim.adb_serial:
                self.lab_session.record.add_device(
                    claim.adb_serial, {"stf": claim.describe(self.claims.client.url)})

    def release(self) -> None:
        with _signals_ignored():
            errors = self.claims.release()
        for e in errors:
            self.write(f"[swaplab] STF release failed: {e}")


#: the claimed adb serials, for pytest-xdist workers (they inherit the controller's
#: environment, and claim nothing themselves)
CLAIMED_ENV = "SWAPLAB_STF_CLAIMED"


def _run_on(lab_session, serials: list[str]) -> None:
    """The run's devices are the claimed ones (plus those --device names): the adb server of
    an STF provider host also sees the USB phones other STF users hold."""
    serials = [s for s in serials if s]
    if lab_session.device_filter == ["all"]:
        lab_session.device_filter = serials
    else:
        lab_session.device_filter += [s for s in serials if s not in lab_session.device_filter]


def claim_for_run(config: pytest.Config, lab_session,
                  write: Callable[[str], None]) -> StfRun | None:
    """Claim the run's STF devices (`--stf`), or None when not asked (or a worker, or
    --help). Raises pytest.UsageError naming the URL on a bad token, an unreachable STF
    or no free matching device; what was claimed by then is released all the same."""
    url = config.getoption("stf", None)
    if not url or config.option.help:
        return None
    if hasattr(config, "workerinput"):  # an xdist worker: the controller's claims
        _run_on(lab_session, os.environ.get(CLAIMED_ENV, "").split(","))
        return None
    try:
        client = StfClient(url, os.environ.get(TOKEN_ENV, ""))
    except StfError as e:
        raise pytest.UsageError(str(e)) from None
    claims = StfClaims(client, lab_session.discovery_options, progress=write)
    run = StfRun(claims, lab_session, write)
    config.add_cleanup(run.release)  # before the first claim: a claim half done is undone
    config.pluginmanager.register(run, "swaplab-stf")
    wanted = wanted_profiles(config, lab_session.profiles)
    try:
        claims.claim_matching(lab_session.profiles, wanted,
                              max_devices=max(0, int(config.getoption("stf_max") or 0)))
    except StfError as e:
        raise pytest.UsageError(str(e)) from None
    _run_on(lab_session, claims.adb_serials)
    os.environ[CLAIMED_ENV] = ",".join(claims.adb_serials)  # for xdist workers (spawned later)
    write(f"[swaplab] STF {client.url}: holding "
          + ", ".join(f"{c.stf_serial} as {c.adb_serial} ({c.profile})" for c in claims.claims))
    return run
