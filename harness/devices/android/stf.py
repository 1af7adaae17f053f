"""DeviceFarmer STF: claim farm phones through STF's REST API and reach them over adb.

STF (doc/API.md and lib/units/api of github.com/DeviceFarmer/stf) is a REST API under
`/api/v1`; every request carries `Authorization: Bearer <access token>` (a token made in
STF's UI, Settings > Keys). What SwapLab uses:

    GET    /api/v1/devices                              -> {success, description, devices: [...]}
    POST   /api/v1/user/devices  {serial, timeout}      -> {success, description}
    POST   /api/v1/user/devices/{serial}/remoteConnect  -> {success, description, remoteConnectUrl}
    DELETE /api/v1/user/devices/{serial}/remoteConnect  -> {success, description}
    DELETE /api/v1/user/devices/{serial}                -> {success, description}

Errors are `{success: false, description}` with 401 (no/bad token), 403 (the device is
used by someone else / not yours), 404 (unknown serial), 504 (device not responding).
A device is free when `present and ready and not using and not owner` (STF's
deviceutil.isAddable). STF lists a device's identity as `model` (ro.product.model without
its brand/manufacturer prefix), `manufacturer` (upper case), `cpuPlatform`
(ro.board.platform), `abi`, `sdk`, `version`, `product`; it does not list ro.soc.model, so a
device is chosen by the profile rules these fields can answer (board_platform,
product_model, abi) and checked again with its real getprop once connected.

`timeout` (ms) of the claim is STF's own idle expiry: STF releases a device that stays idle
that long, the backstop when this process dies without releasing (SIGKILL).

Claimed devices are `adb connect`ed on this host's adb server (the one discovery asks), so
they become ordinary adb serials (`remoteConnectUrl`, e.g. `10.0.0.5:7401`) for the android
backend. `StfClaims.release()` undoes every step in reverse order, device by device, and
goes on after a failed step (each failure is reported, naming the URL and the serial).
Everything STF returns is untrusted: serials are URL-quoted in paths, addresses checked as
host:port, strings shown through `printable`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping

from harness.devices.android.device import AndroidDevice, adb_servers, make_client
from harness.profiles import Profile, match_profile
from harness.terminal import printable

#: environment variable holding the STF access token (never printed, never recorded)
TOKEN_ENV = "SWAPLAB_STF_TOKEN"
#: every HTTP call to STF gives up after this long (STF itself answers 504 after 5 s)
HTTP_TIMEOUT_S = 30.0
#: STF's idle expiry for our claims (ms): one hour without adb traffic releases the device
DEFAULT_CLAIM_TIMEOUT_MS = 3_600_000
#: how long a connected remote device may take to reach adb state "device"
CONNECT_TIMEOUT_S = 30.0
_ADDRESS = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})):\d{1,5}$")
#: STF identity field -> the Android property it comes from (lib/util/devutil.js makeIdentity)
STF_PROPERTIES = {"cpuPlatform": "ro.board.platform", "model": "ro.product.model",
                  "manufacturer": "ro.product.manufacturer", "abi": "ro.product.cpu.abi",
                  "sdk": "ro.build.version.sdk", "version": "ro.build.version.release",
                  "product": "ro.product.name"}


class StfError(Exception):
    """An STF call or claim step failed; the message names the STF URL and the serial."""


def safe_url(url: str) -> str:
    """`url` without user:password, query or fragment: what may be shown and recorded."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{p.port}" if p.port else "")
    return printable(urllib.parse.urlunsplit((p.scheme, netloc, p.path.rstrip("/"), "", "")))


def _text(value: object, limit: int = 200) -> str:
    """A string from STF, safe for a terminal and of bounded length."""
    s = printable(value)
    return s if len(s) <= limit else s[:limit] + "..."


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect with the Authorization header, to any host: the token
    goes nowhere but to the URL given. A 3xx becomes an HTTPError naming the target."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class StfClient:
    """The STF REST calls SwapLab needs (urllib: stdlib, a timeout on every call)."""

    def __init__(self, url: str, token: str, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        p = urllib.parse.urlsplit(url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise StfError(f"--stf {_text(url)!s}: expected an http(s) URL of STF, e.g. "
                           "https://stf.example.org")
        if not token:
            raise StfError(f"STF {safe_url(url)}: no access token (set ${TOKEN_ENV}; STF UI: "
                           "Settings > Keys > Access Tokens)")
        self.base = url.rstrip("/")
        self.url = safe_url(url)
        self._token = token
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # never the token
        return f"StfClient({self.url!r})"

    def _call(self, method: str, path: str, body: dict | None = None,
              serial: str | None = None) -> dict:
        what = f"STF {self.url}: {method} {path}" + (f" (device {_text(serial)})"
                                                     if serial is not None else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with _OPENER.open(req, timeout=self.timeout_s) as resp:
                raw = resp.read(16 << 20)
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400:
                raise StfError(f"{what}: HTTP {e.code} redirect to "
                               f"{safe_url(e.headers.get('Location') or '?')}: give that URL "
                               "to --stf (the token is not sent on)") from None
            try:
                desc = json.loads(e.read(65536) or b"{}").get("description", "")
            except (ValueError, AttributeError, OSError):
                desc = ""
            hint = {401: f" (is ${TOKEN_ENV} a valid STF access token?)",
                    403: " (used by someone else, not available, or not yours)",
                    404: " (unknown to STF)", 504: " (the device is not responding)"}
            raise StfError(f"{what}: HTTP {e.code} {_text(desc) or _text(e.reason)}"
                           f"{hint.get(e.code, '')}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise StfError(f"{what}: cannot reach STF: {_text(reason)}") from None
        try:
            doc = json.loads(raw)
        except ValueError:
            raise StfError(f"{what}: the answer is not JSON: {_text(raw[:80])}") from None
        if not isinstance(doc, dict):
            raise StfError(f"{what}: expected a JSON object, got {type(doc).__name__}")
        if doc.get("success") is False:
            raise StfError(f"{what}: {_text(doc.get('description', 'success: false'))}")
        return doc

    @staticmethod
    def _device_path(serial: str) -> str:
        return "/api/v1/user/devices/" + urllib.parse.quote(serial, safe="")

    def devices(self) -> list[dict]:
        doc = self._call("GET", "/api/v1/devices")
        devices = doc.get("devices")
        if not isinstance(devices, list):
            raise StfError(f"STF {self.url}: GET /api/v1/devices: no 'devices' list in the answer")
        return [d for d in devices if isinstance(d, dict) and isinstance(d.get("serial"), str)]

    def add(self, serial: str, timeout_ms: int = DEFAULT_CLAIM_TIMEOUT_MS) -> None:
        self._call("POST", "/api/v1/user/devices", {"serial": serial, "timeout": timeout_ms},
                   serial=serial)

    def remote_connect(self, serial: str) -> str:
        path = self._device_path(serial) + "/remoteConnect"
        doc = self._call("POST", path, serial=serial)
        url = doc.get("remoteConnectUrl")
        if not isinstance(url, str) or not _ADDRESS.match(url):
            raise StfError(f"STF {self.url}: POST {path} (device {_text(serial)}): "
                           f"remoteConnectUrl {_text(url)!r} is not host:port")
        return url

    def remote_disconnect(self, serial: str) -> None:
        self._call("DELETE", self._device_path(serial) + "/remoteConnect", serial=serial)

    def remove(self, serial: str) -> None:
        self._call("DELETE", self._device_path(serial), serial=serial)


# --- choosing devices -----------------------------------------------------------------------

@dataclasses.dataclass
class StfListing:
    """One device of GET /api/v1/devices, as much of a Device as profile matching reads."""

    serial: str
    fields: Mapping[str, object]
    kind: str = "android"

    @property
    def properties(self) -> dict[str, str]:
        return {prop: str(self.fields[f]) for f, prop in STF_PROPERTIES.items()
                if isinstance(self.fields.get(f), (str, int))}

    @property
    def abi(self) -> str:
        return str(self.fields.get("abi") or "unknown")

    @property
    def model(self) -> str:
        """STF's model (without the manufacturer STF strips off), for messages."""
        return str(self.fields.get("model") or "?").strip()

    def busy_reason(self) -> str | None:
        """Why STF would refuse the claim (its isAddable), None when free."""
        f = self.fields
        if not f.get("present"):
            return "not present"
        if not f.get("ready"):
            return "not ready"
        owner = f.get("owner")
        if f.get("using") or owner:
            who = owner.get("email") or owner.get("name") if isinstance(owner, dict) else None
            return f"used by {_text(who)}" if who else "in use"
        return None

    def describe(self) -> str:
        f = self.fields
        return _text(f"{self.serial} ({f.get('manufacturer', '?')} {self.model}, "
                     f"platform {f.get('cpuPlatform', '?')}, {self.abi})", 300)


@dataclasses.dataclass
class Claim:
    stf_serial: str
    profile: str
    model: str
    adb_serial: str | None = None  # the remoteConnectUrl once connected
    connected: bool = False

    def describe(self, url: str) -> dict:
        return {"url": url, "serial": self.stf_serial, "remote_connect_url": self.adb_serial,
                "profile": self.profile, "model": self.model}


def _adb_client(adb_options):
    host, port, _ = adb_servers(adb_options)[0]
    return make_client(host, port, socket_timeout=CONNECT_TIMEOUT_S)


class StfClaims:
    """The devices this run holds on one STF; `release()` gives every one of them back."""

    def __init__(self, client: StfClient, adb_options=None,
                 progress: Callable[[str], None] = print) -> None:
        self.client = client
        self.adb_options = adb_options
        self.progress = progress
        self.claims: list[Claim] = []
        self.rejected: list[str] = []

    @property
    def adb_serials(self) -> list[str]:
        return [c.adb_serial for c in self.claims if c.connected and c.adb_serial]

    # --- claim ---------------------------------------------------------------------------
    def claim_matching(self, profiles: Mapping[str, Profile], wanted: Iterable[str], *,
                       max_devices: int = 0,
                       timeout_ms: int = DEFAULT_CLAIM_TIMEOUT_MS) -> list[Claim]:
        """Claim every free STF device whose listing matches one of the `wanted` profiles
        (at most `max_devices`, 0 = no limit) and connect it over adb. A device that fails
        a step (taken meanwhile, unreachable, another profile by its getprop) is given back
        at once and noted in `rejected`; the others go on. Raises StfError naming the URL
        (and the devices STF listed) when none matches and is free, or none could be
        claimed. Whatever is in `self.claims` is the caller's to release, also after an
        exception (e.g. KeyboardInterrupt from SIGTERM)."""
        wanted = sorted(set(wanted))
        listing = [StfListing(d["serial"], d) for d in self.client.devices()]
        lines, free = [], []
        for dev in listing:
            prof, reason = match_profile(dev, profiles)
            busy = dev.busy_reason()
            if prof is None or prof.name not in wanted:
                what = f"profile {prof.name}" if prof else "no profile"
                lines.append(f"{dev.describe()}: {what} ({_text(reason)})")
            elif busy:
                lines.append(f"{dev.describe()}: profile {prof.name}, {busy}")
            else:
                free.append((dev, prof))
        if max_devices > 0:
            free = free[:max_devices]
        if not free:
            raise StfError(
                f"STF {self.client.url}: no free device matches the profiles "
                f"{', '.join(wanted) or '(none selected)'}. STF lists "
                + (f"{len(listing)} device(s):\n  " + "\n  ".join(lines) if lines else
                   "no device"))
        for dev, prof in free:
            try:
                self._claim_one(dev, prof, profiles, timeout_ms)
            except StfError as e:  # taken meanwhile, unreachable...: the others still run
                self.rejected.append(str(e))
                self.progress(f"[swaplab] {e} (skipped)")
        if not self.claims:
            raise StfError(f"STF {self.client.url}: no device could be claimed:\n  "
                           + "\n  ".join(self.rejected))
        return list(self.claims)

    def _claim_one(self, dev: StfListing, prof: Profile, profiles: Mapping[str, Profile],
                   timeout_ms: int) -> None:
        claim = Claim(dev.serial, prof.name, _text(dev.model))
        self.progress(f"[swaplab] STF {self.client.url}: claiming {dev.describe()} "
                      f"for profile {prof.name}")
        self.client.add(dev.serial, timeout_ms)  # fails: not ours, nothing to undo
        self.claims.append(claim)
        try:
            claim.adb_serial = self.client.remote_connect(dev.serial)
            self._adb_connect(claim)
            # STF lists no ro.soc.model: the device's own getprop has the last word
            try:
                real = AndroidDevice.connect(_adb_client(self.adb_options), claim.adb_serial,
                                             remote=True)
            except Exception as e:  # noqa: BLE001 - any adb failure is a failed claim
                raise StfError(f"STF {self.client.url}: device {_text(dev.serial)} at "
                               f"{claim.adb_serial}: getprop failed: {_text(e)}") from None
            got, reason = match_profile(real, profiles)
            if got is None or got.name != prof.name:
                raise StfError(f"STF {self.client.url}: {dev.describe()}: STF's fields match "
                               f"{prof.name}, its getprop matches "
                               f"{got.name if got else 'no profile'} ({_text(reason)})")
        except StfError as e:
            self.claims.remove(claim)
            errors = self._release_one(claim)
            raise StfError(f"{e}; given back" + "".join(f"; {x}" for x in errors)) from None

    def _adb_connect(self, claim: Claim) -> None:
        addr = claim.adb_serial
        where = f"STF {self.client.url}: device {_text(claim.stf_serial)} at {addr}"
        try:
            adb = _adb_client(self.adb_options)
            out = adb.connect(addr, timeout=CONNECT_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - adbutils raises several kinds
            raise StfError(f"{where}: adb connect failed: {_text(e)}") from None
        claim.connected = True  # whatever adb says: release disconnects (harmless if not)
        unauthorized = (f"{where}: adb state 'unauthorized': the device does not trust this "
                        "host's adb key; add ~/.android/adbkey.pub in STF (Settings > Keys > "
                        "ADB Keys)")
        if "authenticate" in str(out):  # adb >= 33: "failed to authenticate to HOST:PORT"
            raise StfError(unauthorized)
        if "connected" not in str(out) or "failed" in str(out) or "unable" in str(out):
            raise StfError(f"{where}: adb connect failed: {_text(out)}")
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        state = "unknown"
        while time.monotonic() < deadline:
            try:
                state = adb.device(addr).get_state()
            except Exception as e:  # noqa: BLE001 - not in the list yet
                state = _text(e)
            if state == "device":
                return
            time.sleep(0.3)
        if "unauthorized" in state:
            raise StfError(unauthorized)
        raise StfError(f"{where}: not online within {CONNECT_TIMEOUT_S:g} s (adb state: "
                       f"{state})")

    # --- release -------------------------------------------------------------------------
    def _release_one(self, claim: Claim) -> list[str]:
        errors = []
        if claim.connected and claim.adb_serial:
            try:
                _adb_client(self.adb_options).disconnect(claim.adb_serial, raise_error=True)
            except Exception as e:  # noqa: BLE001 - go on giving the device back
                if "no such device" not in str(e):  # already gone: nothing to undo
                    errors.append(f"adb disconnect {claim.adb_serial}: {_text(e)}")
            claim.connected = False
        if claim.adb_serial:
            try:
                self.client.remote_disconnect(claim.stf_serial)
            except StfError as e:
                errors.append(str(e))
        try:
            self.client.remove(claim.stf_serial)
        except StfError as e:
            errors.append(str(e))
        return errors

    def release(self) -> list[str]:
        """Give back every claimed device (adb disconnect, remoteConnect off, remove from
        the user); returns the errors (each names URL and serial), never raises."""
        errors: list[str] = []
        while self.claims:
            claim = self.claims.pop()
            errs = self._release_one(claim)
            errors += errs
            state = "released" if not errs else "release FAILED: " + "; ".join(errs)
            self.progress(f"[swaplab] STF {self.client.url}: {_text(claim.stf_serial)} {state}")
        return errors
