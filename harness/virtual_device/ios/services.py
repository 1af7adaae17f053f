"""Plist services of the virtual iPhone: house_arrest (then AFC on the app container),
installation_proxy (Browse, Lookup, Install/Upgrade from the AFC media folder, Uninstall) and
diagnostics_relay (IORegistry: AppleSmartBattery / IOPMPowerSource with SIMULATED values)."""

from __future__ import annotations

import plistlib

from .afc import AfcServer
from .apps import InstallError
from .framing import PeerClosed, recv_plist, send_plist


def _public(info: dict, attributes=None) -> dict:
    out = {k: v for k, v in info.items() if not k.startswith("_")}
    if attributes:
        out = {k: v for k, v in out.items() if k in attributes}
    return out


def serve_house_arrest(device, sock) -> None:
    try:
        req = recv_plist(sock)
    except (PeerClosed, OSError, ValueError, plistlib.InvalidFileException):
        return
    cmd, bundle = req.get("Command"), str(req.get("Identifier", ""))
    if cmd not in ("VendContainer", "VendDocuments"):
        send_plist(sock, {"Error": "UnknownCommand"})
        return
    if device.apps.info(bundle) is None:
        send_plist(sock, {"Error": "ApplicationLookupFailed"})
        return
    send_plist(sock, {"Status": "Complete"})
    prefix = "/Documents" if cmd == "VendDocuments" else "/"
    AfcServer(device.apps.container(bundle), device.storage, device.name,
              allowed_prefix=prefix).serve(sock)


def serve_installation_proxy(device, sock) -> None:
    apps = device.apps
    while True:
        try:
            req = recv_plist(sock)
        except (PeerClosed, OSError, ValueError, plistlib.InvalidFileException):
            return
        cmd = req.get("Command")
        opts = req.get("ClientOptions") or {}
        attrs = opts.get("ReturnAttributes")
        if cmd == "Browse":
            items = [_public(i, attrs) for i in apps.installed().values()]
            send_plist(sock, {"Status": "BrowsingApplications", "CurrentList": items,
                              "CurrentAmount": len(items), "Total": len(items)})
            send_plist(sock, {"Status": "Complete"})
        elif cmd == "Lookup":
            wanted = opts.get("BundleIDs")
            found = {b: _public(i, attrs) for b, i in apps.installed().items()
                     if wanted is None or b in wanted}
            send_plist(sock, {"LookupResult": found, "Status": "Complete"})
        elif cmd in ("Install", "Upgrade"):
            path = str(req.get("PackagePath", ""))
            try:
                host = device.media_afc_path(path)
                if not host.is_file():
                    raise InstallError("PackageExtractionFailed", f"no package at {path}")
                for pct, stage in ((5, "CreatingStagingDirectory"), (15, "ExtractingPackage"),
                                   (50, "InspectingPackage"), (70, "VerifyingApplication")):
                    send_plist(sock, {"Status": stage, "PercentComplete": pct})
                apps.install(host)
                send_plist(sock, {"Status": "InstallComplete", "PercentComplete": 100})
                send_plist(sock, {"Status": "Complete"})
            except InstallError as e:
                send_plist(sock, {"Error": e.error, "ErrorDescription": e.description})
            except PermissionError:
                send_plist(sock, {"Error": "PackageExtractionFailed",
                                  "ErrorDescription": f"{path} is outside the media folder"})
        elif cmd == "Uninstall":
            bundle = str(req.get("ApplicationIdentifier", ""))
            if apps.uninstall(bundle):
                send_plist(sock, {"Status": "Complete"})
            else:
                send_plist(sock, {"Error": "APIInternalError",
                                  "ErrorDescription": f"{bundle} is not installed"})
        else:
            send_plist(sock, {"Error": "UnknownCommand", "ErrorDescription": str(cmd)})


def serve_diagnostics(device, sock) -> None:
    while True:
        try:
            req = recv_plist(sock)
        except (PeerClosed, OSError, ValueError, plistlib.InvalidFileException):
            return
        what = req.get("Request")
        if what == "Goodbye":
            send_plist(sock, {"Status": "Success"})
            return
        if what == "IORegistry":
            name, ioclass = req.get("EntryName"), req.get("EntryClass")
            battery = device.battery_ioregistry()
            hit = battery is not None and (name in ("AppleSmartBattery", None) and
                                           ioclass in ("IOPMPowerSource", "AppleSmartBattery", None))
            if name is None and ioclass is None:
                hit = False
            send_plist(sock, {"Status": "Success",
                              "Diagnostics": {"IORegistry": battery if hit else {}}})
        else:
            send_plist(sock, {"Status": "UnknownRequest"})
