"""The runner settings a measurement was taken with, for comparability between runs.

Two runs measure the same thing only if the runner ran the same way: threads, CPU set,
mode, warm-up and measured frames, input, enhance / blend choices, backend, and the
build's flags (ABI, platform, instruction sets, build type, fp16, OpenMP wait policy).
The runner's *code* is what a comparison is about, so the compiler and library versions
are not settings. harness.stats.trust.settings_differ compares two of these dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: runner options that do not change what is measured (where output goes)
_NOT_SETTINGS = {"--models", "--telemetry", "--out", "--save-every", "--out-format",
                 "--dump-landmarks"}
#: runner options without a value
_FLAGS = {"--blend-compare"}
#: build_info keys that are build settings (not code versions)
BUILD_KEYS = ("abi", "platform", "isa", "build_type", "ncnn_runtime_cpu", "ncnn_fp16",
              "omp_wait_policy", "backend")


def runner_settings(argv: Sequence[str], build_info: Mapping[str, Any] | None = None
                    ) -> dict[str, Any]:
    """{"threads": "1", "mode": "small", "cpu_affinity": "0", "target": "inputs/frames",
    ..., "build.abi": "x86_64", ...} from one swap_runner argv and its build info."""
    out: dict[str, Any] = {}
    args = list(argv)[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            i += 1
            continue
        if a in _FLAGS:
            value: Any = True
            i += 1
        else:
            value = args[i + 1] if i + 1 < len(args) else None
            i += 2
        if a not in _NOT_SETTINGS:
            out[a[2:].replace("-", "_")] = value
    for k in BUILD_KEYS:
        v = (build_info or {}).get(k)
        if v is not None:
            out[f"build.{k}"] = list(v) if isinstance(v, (list, tuple)) else v
    return out


def merge_settings(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a test that ran the runner several times (e.g. enhance off, then
    on): a key whose runs differ keeps the sorted list of its values."""
    if not old:
        return dict(new)
    out = dict(old)
    for k, v in new.items():
        if k not in out:
            out[k] = v
            continue
        cur = out[k]
        values = cur["values"] if isinstance(cur, dict) and "values" in cur else [cur]
        if v not in values:
            out[k] = {"values": sorted([*values, v], key=repr)}
    return out


def effective_settings(device_info: Mapping[str, Any] | None,
                       extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """A measurement's runner settings: its device's (the profile's, recorded when the
    runner was prepared: device_info["runner_settings"]) overridden by those of the
    test's own runner runs (the measurement's extra["runner"])."""
    return {**((device_info or {}).get("runner_settings") or {}),
            **((extra or {}).get("runner") or {})}
