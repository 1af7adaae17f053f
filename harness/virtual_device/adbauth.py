"""adb's RSA authentication, device side (what adbd does; AOSP packages/modules/adb:
protocol.txt "AUTH", daemon/auth.cpp, and libcrypto_utils' android_pubkey.cpp).

* On the host's CNXN the device sends AUTH(TOKEN, 0, 20 random bytes).
* The host answers AUTH(SIGNATURE, 0, sig): RSA PKCS#1 v1.5 over the 20-byte token taken
  as a SHA-1 digest (RSA_sign(NID_sha1, token, 20, ...): the SHA-1 DigestInfo prefix, the
  token itself, no hashing). A signature that verifies with a trusted key -> CNXN (online);
  otherwise a new token, and the host tries its next key.
* Out of keys, the host sends AUTH(RSAPUBLICKEY, 0, "<base64 key> user@host\\0"). A real
  phone then asks its user; this device accepts the key only when it is trusted, else it
  stays silent and `adb devices` shows the device as "unauthorized".

Keys are Android's format: the mincrypt RSAPublicKey struct (little-endian u32 words:
modulus size in words, n0inv = -1/n mod 2^32, the modulus, R^2 mod n, the exponent),
base64, then " user@host". Pure functions; the connection state lives in transport.py.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import struct
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3
TOKEN_SIZE = 20
KEY_BITS = 2048
_WORDS = KEY_BITS // 32
log = logging.getLogger("swaplab.virtual_device")
_STRUCT = struct.Struct(f"<II{KEY_BITS // 8}s{KEY_BITS // 8}sI")


class AuthKeyError(ValueError):
    pass


def new_token() -> bytes:
    return os.urandom(TOKEN_SIZE)


def encode_public_key(key: rsa.RSAPublicKey, comment: str = "") -> str:
    """A public key as adb writes adbkey.pub: base64 of the mincrypt struct, " comment"."""
    nums = key.public_numbers()
    if key.key_size != KEY_BITS:
        raise AuthKeyError(f"adb keys are {KEY_BITS}-bit RSA, got {key.key_size}")
    n0inv = (-pow(nums.n, -1, 2**32)) % 2**32
    rr = pow(2, 2 * KEY_BITS, nums.n)
    raw = _STRUCT.pack(_WORDS, n0inv, nums.n.to_bytes(KEY_BITS // 8, "little"),
                       rr.to_bytes(KEY_BITS // 8, "little"), nums.e)
    text = base64.b64encode(raw).decode("ascii")
    return f"{text} {comment}" if comment else text


def decode_public_key(text: str | bytes) -> rsa.RSAPublicKey:
    """Parse "<base64> [comment]" (adbkey.pub, or an AUTH RSAPUBLICKEY payload)."""
    if isinstance(text, bytes):
        text = text.rstrip(b"\0").decode("ascii", "replace")
    fields = text.strip().split()
    if not fields:
        raise AuthKeyError("empty adb public key")
    try:
        raw = base64.b64decode(fields[0], validate=True)
    except (binascii.Error, ValueError):
        raise AuthKeyError("adb public key is not base64") from None
    if len(raw) != _STRUCT.size:
        raise AuthKeyError(f"adb public key has {len(raw)} bytes, expected {_STRUCT.size}")
    words, _n0inv, n_le, _rr, e = _STRUCT.unpack(raw)
    if words != _WORDS:
        raise AuthKeyError(f"adb public key of {words} words, expected {_WORDS}")
    n = int.from_bytes(n_le, "little")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as err:
        raise AuthKeyError(f"invalid RSA public key: {err}") from None


def key_id(key: rsa.RSAPublicKey) -> tuple[int, int]:
    nums = key.public_numbers()
    return nums.n, nums.e


def sign_token(private_key: rsa.RSAPrivateKey, token: bytes) -> bytes:
    """What the adb host does with a token (tests use it to play a host)."""
    return private_key.sign(token, padding.PKCS1v15(), Prehashed(hashes.SHA1()))


def verify_token(key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    if len(token) != TOKEN_SIZE:
        return False
    try:
        key.verify(signature, token, padding.PKCS1v15(), Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True


class TrustedKeys:
    """The public keys a device accepts (one "<base64> comment" per line, like adbd's
    /data/misc/adb/adb_keys)."""

    def __init__(self, keys: Iterable[rsa.RSAPublicKey] = (), sources: Iterable[str] = ()):
        self.keys = list(keys)
        self.sources = list(sources)

    @classmethod
    def from_files(cls, paths: Iterable[Path | str]) -> TrustedKeys:
        keys, sources = [], []
        for p in paths:
            p = Path(p)
            try:
                lines = p.read_text(encoding="ascii", errors="replace").splitlines()
            except OSError as e:
                raise AuthKeyError(f"{p}: cannot read trusted adb keys: {e.strerror}") from None
            for i, line in enumerate(lines, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    keys.append(decode_public_key(line))
                except AuthKeyError as e:
                    raise AuthKeyError(f"{p}:{i}: {e}") from None
            sources.append(str(p))
        return cls(keys, sources)

    def trusts(self, key: rsa.RSAPublicKey) -> bool:
        return key_id(key) in {key_id(k) for k in self.keys}

    def verify(self, token: bytes, signature: bytes) -> bool:
        return any(verify_token(k, token, signature) for k in self.keys)


def user_adb_key_path(home: str | None = None) -> Path:
    """adbkey.pub of the user running this process, where the adb client keeps it:
    $ANDROID_USER_HOME (the .android folder itself), else $HOME/.android."""
    if home is None and os.environ.get("ANDROID_USER_HOME"):
        return Path(os.environ["ANDROID_USER_HOME"]) / "adbkey.pub"
    return Path(home or os.path.expanduser("~")) / ".android" / "adbkey.pub"


def trusted_keys_for(given: TrustedKeys | list[Path | str] | None) -> TrustedKeys:
    """The keys a device accepts: the given ones, else the adb key of the user who started
    it (~/.android/adbkey.pub; none -> nobody gets in, and the log says why)."""
    if isinstance(given, TrustedKeys):
        return given
    if given is None:
        own = user_adb_key_path()
        if not own.is_file():
            log.warning("no %s: the virtual device trusts no adb key (give --trusted-keys, "
                        "or start an adb server once to make the key)", own)
            return TrustedKeys()
        given = [own]
    return TrustedKeys.from_files(given)
