"""The runner app package: its bundle id and version, and the .ipa the virtual iPhone
runs (the host runner build wrapped as an app).

On a real iPhone the .ipa comes from Xcode (runner/ios/BUILD.md) and is given with
$SWAPLAB_IOS_APP; on the virtual iPhone the backend wraps the host runner build
(`python runner/build.py --abi x86_64`) into Payload/SwapLabRunner.app, CFBundleVersion =
a hash of its files, so a changed runner is reinstalled and an unchanged one is not."""

from __future__ import annotations

import hashlib
import io
import plistlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

BUNDLE_ID = "com.swaplab.runner"
APP_NAME = "SwapLabRunner.app"
EXECUTABLE = "swap_runner"


class AppPackageError(ValueError):
    pass


def ipa_info(ipa: Path) -> dict:
    """Info.plist of the one .app in an .ipa (raises AppPackageError naming the file)."""
    try:
        with zipfile.ZipFile(ipa) as zf:
            plists = [n for n in zf.namelist() if n.startswith("Payload/") and n.count("/") == 2
                      and n.endswith(".app/Info.plist")]
            if len(plists) != 1:
                raise AppPackageError(f"{ipa}: expected one Payload/*.app/Info.plist, found "
                                      f"{len(plists)}")
            info = plistlib.loads(zf.read(plists[0]))
    except (zipfile.BadZipFile, OSError, plistlib.InvalidFileException) as e:
        raise AppPackageError(f"{ipa}: not a valid .ipa: {e}") from None
    for key in ("CFBundleIdentifier", "CFBundleVersion"):
        if not isinstance(info.get(key), str) or not info[key]:
            raise AppPackageError(f"{ipa}: Info.plist has no {key}")
    return info


def wrap_host_build(files: Mapping[str, Path], out_dir: Path) -> Path:
    """An .ipa holding the host runner build (bin/swap_runner and its plugins) for the
    virtual iPhone. Content-addressed: the same files give the same path and version."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + Path(files[rel]).read_bytes())
    version = h.hexdigest()[:16]
    ipa = Path(out_dir) / f"SwapLabRunner-{version}.ipa"
    if ipa.is_file():
        return ipa
    info = {"CFBundleIdentifier": BUNDLE_ID, "CFBundleExecutable": EXECUTABLE,
            "CFBundleName": "SwapLab", "CFBundleDisplayName": "SwapLab Runner",
            "CFBundleVersion": version, "CFBundleShortVersionString": "1.0",
            "CFBundlePackageType": "APPL", "UIFileSharingEnabled": True,
            "MinimumOSVersion": "15.0"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"Payload/{APP_NAME}/Info.plist", plistlib.dumps(info))
        for rel, local in sorted(files.items()):
            zi = zipfile.ZipInfo(f"Payload/{APP_NAME}/{Path(rel).name}")
            zi.external_attr = 0o755 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, Path(local).read_bytes())
    ipa.parent.mkdir(parents=True, exist_ok=True)
    tmp = ipa.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(ipa)
    return ipa
