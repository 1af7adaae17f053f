"""Which tests run together on one pytest-xdist worker, in collection order.

Every device is one scope: all its tests run on one worker, one after another, so no two
workers ever drive one device. Devices whose programs run on this host's CPU (this host,
SwapLab's virtual devices) are the exception the `--host-cpu` policy decides:

  parallel  each is its own scope, like a phone: they measure at the same time and share
            this host's cores (the run records how many did; docs/fleet.md)
  serial    they share one scope, "host-cpu": one worker runs them one after another, so
            none measures while another loads the same cores

Pure functions: no pytest, no devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: device kinds whose programs run on this host's CPU
HOST_CPU_KINDS = ("local", "virtual")
HOST_CPU_SCOPE = "host-cpu"
POLICIES = ("parallel", "serial")


def uses_host_cpu(kind: str) -> bool:
    return kind in HOST_CPU_KINDS


def device_scopes(devices: Iterable[tuple[str, str]], policy: str = "parallel"
                  ) -> dict[str, str]:
    """serial -> scope name, for (serial, kind) pairs."""
    if policy not in POLICIES:
        raise ValueError(f"--host-cpu must be one of {', '.join(POLICIES)}, got {policy!r}")
    out = {}
    for serial, kind in devices:
        out[serial] = HOST_CPU_SCOPE if policy == "serial" and uses_host_cpu(kind) \
            else f"device:{serial}"
    return out


def serial_in_nodeid(nodeid: str, serials: Iterable[str]) -> str | None:
    """The device a test id is parametrized with: the plugin gives each device-bound test
    the id part `[SERIAL]`, joined with other parameters' ids by "-"; the longest serial
    that fits wins (a serial may itself contain "-")."""
    name = nodeid.rsplit("::", 1)[-1]
    if "[" not in name or not name.endswith("]"):
        return None
    params = name[name.index("[") + 1:-1]
    for serial in sorted(serials, key=len, reverse=True):
        if params == serial or params.startswith(serial + "-") \
                or params.endswith("-" + serial) or f"-{serial}-" in params:
            return serial
    return None


def scope_of(nodeid: str, scopes: Mapping[str, str]) -> str:
    """The scheduling scope of a test: its device's scope, else its module (as
    pytest-xdist's --dist loadscope would)."""
    serial = serial_in_nodeid(nodeid, scopes)
    if serial is not None:
        return scopes[serial]
    return "module:" + nodeid.split("::", 1)[0]


def workers_for(scopes: Mapping[str, str]) -> int:
    """`-n auto`: one worker per device scope (at least one)."""
    return max(1, len(set(scopes.values())))


def host_cpu_parallel(devices: Iterable[tuple[str, str]], scopes: Mapping[str, str]) -> int:
    """How many scopes measure on this host's CPU at the same time (at most)."""
    return len({scopes[s] for s, kind in devices if uses_host_cpu(kind) and s in scopes})
