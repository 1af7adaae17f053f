"""The usbmuxd side of the virtual iPhone: the plist protocol (version 1) on a Unix socket
(or 127.0.0.1:PORT), as libusbmuxd and pymobiledevice3 speak it.

Requests: ListDevices, Listen (Attached/Detached events), Connect (the socket then becomes a
byte stream to a port on the device; PortNumber arrives in network byte order),
ReadPairRecord (the host's pair record, kept by usbmuxd like /var/lib/lockdown), ReadBUID,
SavePairRecord (refused: the virtual device is paired when it starts, or never).
Result numbers as usbmuxd: 0 OK, 2 BADDEV, 3 CONNREFUSED.

Only the user who started it can connect: the socket file is mode 0600 (a TCP address
listens on 127.0.0.1 only)."""

from __future__ import annotations

import logging
import os
import plistlib
import socket
import threading

from .framing import PeerClosed, close_quietly, recv_usbmux, send_usbmux

log = logging.getLogger("swaplab.virtual_device.ios.usbmuxd")

RESULT_OK, RESULT_BADDEV, RESULT_CONNREFUSED = 0, 2, 3


class VirtualUsbmuxd:
    """Serves one or more virtual iPhones (`add`) at `address` (socket path or HOST:PORT)."""

    def __init__(self, address: str, buid: str):
        self.address = address
        self.buid = buid
        self.devices: dict[int, object] = {}   # DeviceID -> VirtualIPhone
        self.pair_records: dict[str, bytes] = {}  # UDID -> plist (the host's records)
        self._listeners: list[socket.socket] = []
        self._lock = threading.Lock()
        self._next_id = 1
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- devices ------------------------------------------------------------
    def add(self, device) -> int:
        with self._lock:
            dev_id = self._next_id
            self._next_id += 1
            self.devices[dev_id] = device
            if device.trusted:
                self.pair_records[device.udid] = plistlib.dumps(device.pairing.host_record())
        device.attached(self, dev_id)
        self._notify({"MessageType": "Attached", "DeviceID": dev_id,
                      "Properties": self._properties(dev_id, device)})
        return dev_id

    def remove(self, dev_id: int) -> None:
        """The device is unplugged: gone from ListDevices, listeners get Detached."""
        with self._lock:
            if self.devices.pop(dev_id, None) is None:
                return
        self._notify({"MessageType": "Detached", "DeviceID": dev_id})

    @staticmethod
    def _properties(dev_id: int, device) -> dict:
        return {"ConnectionType": "USB", "DeviceID": dev_id, "LocationID": 0x14100000 + dev_id,
                "ProductID": 0x12A8, "SerialNumber": device.udid, "USBSerialNumber": device.udid,
                "ConnectionSpeed": 480000000}

    def _notify(self, message: dict) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for s in listeners:
            try:
                send_usbmux(s, 0, message)
            except OSError:
                with self._lock:
                    if s in self._listeners:
                        self._listeners.remove(s)

    # --- server ---------------------------------------------------------------
    def start(self) -> None:
        host, sep, port = self.address.rpartition(":")
        if sep and port.isdigit() and "/" not in self.address:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1" if host in ("", "localhost", "127.0.0.1") else host, int(port)))
            if int(port) == 0:
                self.address = f"127.0.0.1:{s.getsockname()[1]}"
        else:
            if os.path.exists(self.address):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(self.address)
                    probe.close()
                    raise OSError(f"{self.address}: a usbmuxd already listens there")
                except ConnectionRefusedError:
                    os.unlink(self.address)  # stale socket of a dead server
                finally:
                    probe.close()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)
            try:
                s.bind(self.address)
            finally:
                os.umask(old)
        s.listen(64)
        self._sock = s
        t = threading.Thread(target=self._accept_loop, name="vusbmuxd-accept", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            close_quietly(self._sock)
        for dev in list(self.devices.values()):
            dev.stop()
        with self._lock:
            for s in self._listeners:
                close_quietly(s)
            self._listeners.clear()
        if "/" in self.address and os.path.exists(self.address):
            try:
                os.unlink(self.address)
            except OSError:
                pass

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="vusbmuxd-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while True:
                _version, _message, tag, req = recv_usbmux(conn)
                if req is None:  # binary protocol: answer like usbmuxd does to old clients
                    send_usbmux(conn, tag, {"MessageType": "Result", "Number": 1})
                    continue
                if self._handle(conn, tag, req):
                    return  # the socket now belongs to a device connection or a listener
        except (PeerClosed, OSError, ValueError, plistlib.InvalidFileException):
            pass
        close_quietly(conn)

    def _result(self, conn, tag: int, number: int) -> None:
        send_usbmux(conn, tag, {"MessageType": "Result", "Number": number})

    def _handle(self, conn: socket.socket, tag: int, req: dict) -> bool:
        kind = req.get("MessageType")
        if kind == "ListDevices":
            with self._lock:
                items = [{"DeviceID": i, "MessageType": "Attached",
                          "Properties": self._properties(i, d)} for i, d in self.devices.items()]
            send_usbmux(conn, tag, {"DeviceList": items})
        elif kind == "Listen":
            self._result(conn, tag, RESULT_OK)
            with self._lock:
                self._listeners.append(conn)
                current = list(self.devices.items())
            for i, d in current:
                send_usbmux(conn, 0, {"MessageType": "Attached", "DeviceID": i,
                                      "Properties": self._properties(i, d)})
            return True
        elif kind == "ReadBUID":
            send_usbmux(conn, tag, {"BUID": self.buid})
        elif kind == "ReadPairRecord":
            record = self.pair_records.get(str(req.get("PairRecordID", "")))
            if record is None:
                self._result(conn, tag, RESULT_BADDEV)
            else:
                send_usbmux(conn, tag, {"PairRecordData": record})
        elif kind == "SavePairRecord":
            self._result(conn, tag, RESULT_BADDEV)
        elif kind == "Connect":
            dev = self.devices.get(int(req.get("DeviceID", -1)))
            if dev is None:
                self._result(conn, tag, RESULT_BADDEV)
                return False
            port = socket.ntohs(int(req.get("PortNumber", 0)) & 0xFFFF)
            handler = dev.open_port(port)
            if handler is None:
                self._result(conn, tag, RESULT_CONNREFUSED)
                return False
            self._result(conn, tag, RESULT_OK)
            dev.serve_connection(conn, handler)
            return True
        else:
            self._result(conn, tag, 1)  # BADCOMMAND
        return False
