"""A small DeviceFarmer STF stand-in: the REST calls of STF's doc/API.md, for SwapLab's
virtual devices.

STF itself needs RethinkDB, which no package registry here carries, so SwapLab's STF client
(harness/devices/android/stf.py) is tested against this server. It answers what the client
uses, with STF's JSON, status codes and descriptions (taken from lib/units/api of
github.com/DeviceFarmer/stf: controllers/user.js, helpers/securityHandlers.js,
util/deviceutil.js, util/datautil.js):

* every call needs `Authorization: Bearer TOKEN` of a known token, else 401
  (`Requires Authentication`, `Authorization header should be in "Bearer $AUTH_TOKEN"
  format`, `Bad Credentials`);
* GET /api/v1/devices[?fields=a,b], GET /api/v1/devices/{serial}, GET /api/v1/user,
  GET /api/v1/user/devices; `using` is "owned by the caller", remoteConnectUrl is shown to
  the owner only (datautil.normalize);
* POST /api/v1/user/devices {serial, timeout}: 404 `Not Found (device)` for an unknown
  serial, 403 `Device is being used or not available` unless present, ready and unowned
  (deviceutil.isAddable);
* POST|DELETE /api/v1/user/devices/{serial}/remoteConnect and DELETE
  /api/v1/user/devices/{serial}: 404 `Device not found`, 403 unless the caller owns it.
  remoteConnectUrl is the virtual device's own adb transport address (127.0.0.1:PORT), so
  `adb connect` reaches it directly (real STF forwards a provider port to the phone).

It listens on 127.0.0.1 only. `events` records (method, path, status) of every call and
`device(serial)` the current state, for tests to check what a client did.

    server = StfServer({"TOKEN": "ci@example.org"}).start()
    server.add_virtual(vdev, serial="SD6-0001")
    ...  # pytest --stf server.url with SWAPLAB_STF_TOKEN=TOKEN
    server.stop()
"""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/api/v1"


def identity(properties: dict[str, str], serial: str) -> dict:
    """STF's device identity from Android properties (lib/util/devutil.js makeIdentity):
    the model loses its brand/manufacturer prefix, the manufacturer is upper case."""
    model = properties.get("ro.product.model", "")
    for prefix in (properties.get("ro.product.brand", ""),
                   properties.get("ro.product.manufacturer", "")):
        if prefix and model.startswith(prefix):
            model = model[len(prefix):]
    return {"serial": serial, "platform": "Android",
            "manufacturer": properties.get("ro.product.manufacturer", "").upper(),
            "model": model, "version": properties.get("ro.build.version.release"),
            "abi": properties.get("ro.product.cpu.abi"),
            "sdk": properties.get("ro.build.version.sdk"),
            "product": properties.get("ro.product.name"),
            "cpuPlatform": properties.get("ro.board.platform"),
            "marketName": properties.get("ro.product.device")}


class StfServer:
    def __init__(self, tokens: dict[str, str]) -> None:
        """`tokens`: access token -> the email of its user."""
        self.tokens = dict(tokens)
        self._devices: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.events: list[tuple[str, str, int]] = []
        #: seconds the answer to DELETE /api/v1/user/devices/{serial} takes (a slow STF:
        #: tests send signals while a client is releasing)
        self.release_delay_s = 0.0
        self._httpd: ThreadingHTTPServer | None = None

    # --- devices -------------------------------------------------------------------------
    def add_device(self, serial: str, properties: dict[str, str], connect_url: str,
                   owner: str | None = None, present: bool = True, ready: bool = True) -> None:
        """A farm device: its identity from `properties`, reachable with `adb connect
        connect_url`; `owner` (an email) has it in use already."""
        dev = identity(properties, serial)
        dev.update({"present": present, "ready": ready, "remoteConnect": False,
                    "remoteConnectUrl": None, "_connect_url": connect_url,
                    "owner": _owner(owner) if owner else None})
        with self._lock:
            self._devices[serial] = dev

    def add_virtual(self, vdev, serial: str, owner: str | None = None) -> None:
        """A SwapLab virtual device (harness.virtual_device.server.VirtualDevice)."""
        self.add_device(serial, dict(vdev.properties), vdev.serial, owner=owner)

    def device(self, serial: str) -> dict:
        """The server's state of a device (owner, remoteConnect...), a copy."""
        with self._lock:
            return {k: v for k, v in copy.deepcopy(self._devices[serial]).items()
                    if not k.startswith("_")}

    def _public(self, dev: dict, email: str) -> dict:
        """datautil.normalize: `using` from the caller's view, remote URL for the owner."""
        out = {k: v for k, v in copy.deepcopy(dev).items() if not k.startswith("_")}
        mine = bool(dev["owner"]) and dev["owner"]["email"] == email
        out["using"] = mine
        if not mine:
            out["remoteConnect"] = False
            out["remoteConnectUrl"] = None
        if not dev["present"]:
            out["owner"] = None
        return out

    # --- the API -------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers, body: bytes) -> tuple[int, dict]:
        email, err = self._authenticate(headers.get("Authorization"))
        if err:
            return 401, err
        url = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(url.query)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        if parts[:2] != ["api", "v1"]:
            return 404, _fail("Not Found")
        route = parts[2:]
        fields = query.get("fields", [""])[0]
        if method == "DELETE" and len(route) == 3 and route[:2] == ["user", "devices"]:
            time.sleep(self.release_delay_s)
        with self._lock:
            if method == "GET" and route == ["devices"]:
                devices = [self._public(d, email) for d in self._devices.values()]
                return 200, {"success": True, "description": "Devices Information",
                             "devices": [_pick(d, fields) for d in devices]}
            if method == "GET" and len(route) == 2 and route[0] == "devices":
                dev = self._devices.get(route[1])
                if dev is None:
                    return 404, _fail("Device not found")
                return 200, {"success": True, "device": _pick(self._public(dev, email), fields)}
            if method == "GET" and route == ["user"]:
                return 200, {"success": True, "user": _owner(email)}
            if method == "GET" and route == ["user", "devices"]:
                mine = [self._public(d, email) for d in self._devices.values()
                        if self._owned(d, email)]
                return 200, {"success": True, "description": "Controlled devices information",
                             "devices": [_pick(d, fields) for d in mine]}
            if method == "POST" and route == ["user", "devices"]:
                return self._add(email, body)
            if route[:2] == ["user", "devices"] and len(route) in (3, 4):
                dev = self._devices.get(route[2])
                if dev is None:
                    return 404, _fail("Device not found")
                if len(route) == 3 and method == "DELETE":
                    if not self._owned(dev, email):
                        return 403, _fail("You cannot release this device. Not owned by you")
                    dev.update(owner=None, remoteConnect=False, remoteConnectUrl=None)
                    return 200, {"success": True, "description": "Device successfully removed"}
                if len(route) == 4 and route[3] == "remoteConnect" and method in ("POST",
                                                                                  "DELETE"):
                    if not self._owned(dev, email):
                        return 403, _fail("Device is not owned by you or is not available")
                    if method == "POST":
                        dev.update(remoteConnect=True, remoteConnectUrl=dev["_connect_url"])
                        return 200, {"success": True, "description": "Remote connection is "
                                     "enabled", "remoteConnectUrl": dev["_connect_url"]}
                    dev.update(remoteConnect=False, remoteConnectUrl=None)
                    return 200, {"success": True,
                                 "description": "Device remote disconnected successfully"}
        return 404, _fail("Not Found")

    def _authenticate(self, header: str | None) -> tuple[str, dict | None]:
        """securityHandlers.accessTokenAuth."""
        if not header:
            return "", _fail("Requires Authentication")
        fmt, _, token = header.partition(" ")
        if fmt != "Bearer":
            return "", _fail('Authorization header should be in "Bearer $AUTH_TOKEN" format')
        if token not in self.tokens:
            return "", _fail("Bad Credentials")
        return self.tokens[token], None

    @staticmethod
    def _owned(dev: dict, email: str) -> bool:
        """deviceutil.isOwnedByUser."""
        return bool(dev["present"] and dev["ready"] and dev["owner"]
                    and dev["owner"]["email"] == email)

    def _add(self, email: str, body: bytes) -> tuple[int, dict]:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return 400, _fail("Request body is not JSON")
        serial = payload.get("serial") if isinstance(payload, dict) else None
        timeout = payload.get("timeout") if isinstance(payload, dict) else None
        if not isinstance(serial, str) or (timeout is not None and (
                not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0)):
            return 400, _fail("Validation error: serial (string) required, timeout: "
                              "integer >= 0")
        dev = self._devices.get(serial)
        if dev is None:
            return 404, _fail("Not Found (device)")
        if not (dev["present"] and dev["ready"] and not dev["owner"]):  # isAddable
            return 403, _fail("Device is being used or not available")
        dev["owner"] = _owner(email)
        dev["_timeout_ms"] = timeout
        return 200, {"success": True, "description": "Device successfully added"}

    # --- serving -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> StfServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(n, 1 << 20)) if n > 0 else b""
                status, doc = server.handle(self.command, self.path, self.headers, body)
                with server._lock:
                    server.events.append((self.command, urllib.parse.urlsplit(self.path).path,
                                          status))
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args) -> None:  # quiet: events keep the calls
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="stf-server",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> StfServer:  # noqa: PYI034
        return self if self._httpd else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _owner(email: str) -> dict:
    return {"email": email, "name": email.split("@")[0], "group": "default"}


def _fail(description: str) -> dict:
    return {"success": False, "description": description}


def _pick(device: dict, fields: str) -> dict:
    """STF's `fields` query: only the listed fields (lodash _.pick)."""
    if not fields:
        return device
    wanted = fields.split(",")
    return {k: v for k, v in device.items() if k in wanted}
