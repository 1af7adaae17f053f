"""The pairing record of a virtual iPhone, made the way a host makes one when a user taps
"Trust": a root CA, a host certificate and a device certificate signed by it.

The host keeps the record (usbmuxd serves it with ReadPairRecord; pymobiledevice3 also reads
~/.pymobiledevice3/UDID.plist); the device keeps the HostID, the root certificate (to verify
the host's TLS client certificate) and its own device key."""

from __future__ import annotations

import dataclasses
import datetime
import os
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

#: certificates are valid from a fixed date for 100 years: nothing depends on today's date
_NOT_BEFORE = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(2120, 1, 1, tzinfo=datetime.UTC)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _cert(subject_key, issuer_key, cn: str, issuer_cn: str, ca: bool) -> x509.Certificate:
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
         .public_key(subject_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(_NOT_BEFORE).not_valid_after(_NOT_AFTER)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(issuer_key, hashes.SHA256())


@dataclasses.dataclass
class Pairing:
    """What both sides hold after pairing. `host_record()` is the host's pair record."""

    host_id: str
    system_buid: str
    root_cert_pem: bytes
    root_key_pem: bytes
    host_cert_pem: bytes
    host_key_pem: bytes
    device_cert_pem: bytes
    device_key_pem: bytes
    escrow_bag: bytes
    wifi_mac: str

    def host_record(self) -> dict:
        return {"HostID": self.host_id, "SystemBUID": self.system_buid,
                "RootCertificate": self.root_cert_pem, "RootPrivateKey": self.root_key_pem,
                "HostCertificate": self.host_cert_pem, "HostPrivateKey": self.host_key_pem,
                "DeviceCertificate": self.device_cert_pem, "EscrowBag": self.escrow_bag,
                "WiFiMACAddress": self.wifi_mac}


def make_pairing(system_buid: str) -> Pairing:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    host_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    device_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _cert(root_key, root_key, "SwapLab virtual pairing root", "SwapLab virtual pairing root",
                 ca=True)
    host = _cert(host_key, root_key, "SwapLab host", "SwapLab virtual pairing root", ca=False)
    device = _cert(device_key, root_key, "SwapLab virtual iPhone", "SwapLab virtual pairing root",
                   ca=False)
    pem = serialization.Encoding.PEM
    mac = ":".join(f"{b:02x}" for b in os.urandom(6))
    return Pairing(host_id=str(uuid.uuid4()).upper(), system_buid=system_buid,
                   root_cert_pem=root.public_bytes(pem), root_key_pem=_pem_key(root_key),
                   host_cert_pem=host.public_bytes(pem), host_key_pem=_pem_key(host_key),
                   device_cert_pem=device.public_bytes(pem), device_key_pem=_pem_key(device_key),
                   escrow_bag=os.urandom(32), wifi_mac=mac)
