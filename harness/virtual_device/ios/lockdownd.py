"""The lockdownd side of the virtual iPhone (port 62078): QueryType, GetValue, StartSession
with TLS (the device certificate; the host must present a client certificate signed by the
pairing root, and the HostID of the pairing), StartService, StopSession.

Before a session GetValue answers only the public identity values, as a locked phone does;
a host without the pairing gets InvalidHostID and a Pair request gets
PairingDialogResponsePending (the "Trust this computer?" dialog nobody answers)."""

from __future__ import annotations

import logging
import ssl
import uuid

from .framing import PeerClosed, close_quietly, recv_plist, send_plist

log = logging.getLogger("swaplab.virtual_device.ios.lockdownd")

LOCKDOWN_PORT = 62078
#: what lockdownd tells a host that holds no session
PUBLIC_KEYS = ("BuildVersion", "DeviceClass", "DeviceName", "ProductName", "ProductType",
               "ProductVersion", "UniqueDeviceID", "HardwareModel", "CPUArchitecture")


def serve_lockdown(device, sock) -> None:
    """One lockdownd connection, until the host closes it."""
    holder = [sock]
    try:
        _serve(device, holder)
    finally:
        close_quietly(holder[0])  # the TLS socket, once the session started


def _serve(device, holder: list) -> None:
    sock = holder[0]
    session = None
    while True:
        try:
            req = recv_plist(sock)
        except (PeerClosed, OSError, ssl.SSLError):
            return
        name = req.get("Request")
        reply: dict = {"Request": name}
        if name == "QueryType":
            reply["Type"] = "com.apple.mobile.lockdown"
        elif name == "GetValue":
            values = device.lockdown_values() if session else {
                k: v for k, v in device.lockdown_values().items() if k in PUBLIC_KEYS}
            domain, key = req.get("Domain"), req.get("Key")
            if domain:
                values = device.domain_values(domain) if session else {}
            if key is not None:
                if key in values:
                    reply["Value"] = values[key]
                else:
                    reply["Error"] = "MissingValue"
            else:
                reply["Value"] = values
            if domain:
                reply["Domain"] = domain
            if key:
                reply["Key"] = key
        elif name == "StartSession":
            if not device.trusted or req.get("HostID") != device.pairing.host_id:
                reply["Error"] = "InvalidHostID"
            else:
                session = str(uuid.uuid4()).upper()
                reply.update({"SessionID": session, "EnableSessionSSL": True})
                send_plist(sock, reply)
                try:
                    sock = device.tls_server_context().wrap_socket(sock, server_side=True)
                    holder[0] = sock
                except (ssl.SSLError, OSError) as e:
                    log.info("lockdownd: TLS handshake with host failed: %s", e)
                    return
                continue
        elif name == "StopSession":
            session = None
        elif name == "ValidatePair":
            record = req.get("PairRecord") or {}
            if not device.trusted or record.get("HostID") != device.pairing.host_id:
                reply["Error"] = "InvalidHostID"
        elif name == "Pair":
            reply["Error"] = "PairingDialogResponsePending"
        elif name == "StartService":
            service = str(req.get("Service", ""))
            if not session:
                reply["Error"] = "InvalidService" if not device.trusted else "SessionInactive"
            elif not device.has_service(service):
                reply["Error"] = "InvalidService"
            else:
                reply.update({"Service": service, "Port": device.start_service(service),
                              "EnableServiceSSL": True})
        elif name == "SetValue":
            reply["Error"] = "SetProhibited"
        else:
            reply["Error"] = "InvalidRequest"
        try:
            send_plist(sock, reply)
        except OSError:
            return
