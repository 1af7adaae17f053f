"""The `[virtual]` section of a device profile, for SwapLab's virtual devices (the Android
one in this package, the iPhone in ios/)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from harness.profiles import VIRTUAL_ABIS

from .sandbox import HOST_VULKAN_DRIVER, VULKAN_PROPERTY

REPO = Path(__file__).resolve().parents[2]


class ProfileError(ValueError):
    pass


def load_virtual_profile(profile: str, profiles_dir: Path | None = None) -> dict:
    """Read a profile's [virtual] section: {"name", "abi", "properties", "sensors", "gpu"}.

    `profile` is a name in device_profiles/ or a path to a .toml file. `[virtual] gpu = true`
    becomes the property ro.hardware.vulkan (as Android names its Vulkan driver): the
    sandbox then shows device programs the host's Vulkan driver (sandbox.vulkan_env)."""
    p = Path(profile)
    if not (p.suffix == ".toml" and p.exists()):
        p = (profiles_dir or REPO / "device_profiles") / f"{profile}.toml"
    if not p.exists():
        avail = sorted(x.stem for x in p.parent.glob("*.toml")) if p.parent.exists() else []
        raise ProfileError(f"no device profile {profile!r} ({p}); available: {avail or 'none'}")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{p}: invalid TOML: {e}") from None
    virt = data.get("virtual")
    if not isinstance(virt, dict):
        raise ProfileError(f"{p}: profile {data.get('name', p.stem)!r} has no [virtual] section")
    props = virt.get("properties", {})
    if not isinstance(props, dict):
        raise ProfileError(f"{p}: [virtual.properties] must be a table")
    abi = str(virt.get("abi", "x86_64"))
    if abi not in VIRTUAL_ABIS:
        raise ProfileError(f"{p}: [virtual] abi must be one of {VIRTUAL_ABIS}, got {abi!r}")
    props = {str(k): str(v) for k, v in props.items()}
    name = str(data.get("name", p.stem))
    props.setdefault("ro.swaplab.virtual.profile", name)
    gpu = virt.get("gpu", False)
    if not isinstance(gpu, bool):
        raise ProfileError(f"{p}: [virtual] gpu must be true or false, got {gpu!r}")
    if gpu:
        props.setdefault(VULKAN_PROPERTY, HOST_VULKAN_DRIVER)
    return {"name": name, "abi": abi, "properties": props,
            "sensors": dict(virt.get("sensors", {})), "gpu": gpu}
