"""big.LITTLE placement from a profile's `[cpu]` table, as swap_runner's `--placement` flags.

```toml
[cpu]
clusters = [{name = "little", cpus = "0-3"}, {name = "big", cpus = "4-7"}]
placement = {detect = "little:1", landmarks = "big:2", seg = "big:2"}
```
Each net role (detect, landmarks, seg) runs on a cluster's CPUs with that many threads
(the mobile pipeline's small models single-threaded on the efficiency cores, the heavy ones
multi-threaded on the performance cores). The runner clamps both to the CPUs it may run on
(a virtual device on this host) and records the clamp (runner/README.md, "Placement").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ROLES = ("detect", "landmarks", "seg")
_CPU_LIST_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


class PlacementError(ValueError):
    pass


def placement_args(table: Mapping[str, Any] | None, where: str = "[cpu]") -> tuple[str, ...]:
    """The `--placement role=CPUS:THREADS` values of a `[cpu]` table (validated; errors
    name the key)."""
    if not table:
        return ()
    for key in table:
        if key not in ("clusters", "placement"):
            raise PlacementError(f"{where}: key 'cpu.{key}': unknown key; expected clusters "
                                 "or placement")
    clusters: dict[str, str] = {}
    raw = table.get("clusters", [])
    if not isinstance(raw, list):
        raise PlacementError(f"{where}: key 'cpu.clusters': expected an array of "
                             f"{{name, cpus}} tables, got {raw!r}")
    for i, c in enumerate(raw):
        key = f"cpu.clusters[{i}]"
        if not isinstance(c, dict) or set(c) != {"name", "cpus"} or \
                not all(isinstance(v, str) for v in c.values()):
            raise PlacementError(f"{where}: key '{key}': expected {{name = \"big\", cpus = "
                                 f"\"4-7\"}}, got {c!r}")
        if not _CPU_LIST_RE.match(c["cpus"]):
            raise PlacementError(f"{where}: key '{key}.cpus': expected a CPU list like "
                                 f"\"4-7\" or \"0,2\", got {c['cpus']!r}")
        if c["name"] in clusters:
            raise PlacementError(f"{where}: key '{key}.name': cluster {c['name']!r} twice")
        clusters[c["name"]] = c["cpus"]
    placement = table.get("placement", {})
    if not isinstance(placement, dict):
        raise PlacementError(f"{where}: key 'cpu.placement': expected a table like "
                             f"{{detect = \"little:1\"}}, got {placement!r}")
    out = []
    for role, spec in placement.items():
        key = f"cpu.placement.{role}"
        if role not in ROLES:
            raise PlacementError(f"{where}: key '{key}': unknown net; expected "
                                 f"{', '.join(ROLES)}")
        m = re.fullmatch(r"([A-Za-z0-9_]+):(\d+)", spec) if isinstance(spec, str) else None
        if m is None:
            raise PlacementError(f"{where}: key '{key}': expected \"CLUSTER:THREADS\" like "
                                 f"\"big:2\", got {spec!r}")
        if m.group(1) not in clusters:
            raise PlacementError(f"{where}: key '{key}': no cluster {m.group(1)!r} in "
                                 f"cpu.clusters ({', '.join(clusters) or 'none'})")
        if not 1 <= int(m.group(2)) <= 64:
            raise PlacementError(f"{where}: key '{key}': threads must be 1..64, got "
                                 f"{m.group(2)}")
        out.append(f"{role}={clusters[m.group(1)]}:{int(m.group(2))}")
    return tuple(out)
