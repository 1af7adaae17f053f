"""One run of the runner app on an iPhone (the app contract of runner/ios/README.md):
launch arguments, the DVT launch/poll/kill loop with sysmontap alongside, and the
RunResult made of what the app left in its run folder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
import time
from collections.abc import Mapping, Sequence

from pymobiledevice3.exceptions import AfcFileNotFoundError
from pymobiledevice3.services.dvt.instruments.device_info import DeviceInfo
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl
from pymobiledevice3.services.dvt.instruments.sysmontap import Sysmontap

from harness.devices.base import DeviceError, RunResult
from harness.devices.ios import app as A
from harness.devices.ios import sensors as S

WORKDIR = "Documents"
RUNS_DIR = ".swaplab-runs"
RUNNER_NAME = "swap_runner"
POLL_S = 0.3
PROCESS_ATTRIBUTES = ["pid", "name", "cpuUsage", "physFootprint"]
SYSTEM_ATTRIBUTES = ["vmFreeCount"]


def app_arguments(device_label: str, argv: Sequence[str], run_dir: str) -> list[str]:
    """Launch arguments of the runner app for a swap_runner argv: `--swaplab-run-dir DIR`,
    then the runner's arguments with `--telemetry -` pointed at DIR/telemetry.jsonl."""
    if not argv or posixpath.basename(argv[0]) != RUNNER_NAME:
        raise DeviceError(f"device {device_label}: iOS runs native code only inside the "
                          f"runner app; cannot run {argv[0] if argv else '()'!r}")
    args = list(argv[1:])
    for i in range(len(args) - 1):
        if args[i] == "--telemetry" and args[i + 1] == "-":
            args[i + 1] = f"{run_dir}/telemetry.jsonl"
    return ["--swaplab-run-dir", run_dir, *args]


async def run_app(dvt, afc, args: list[str], env: Mapping[str, str], run_dir: str,
                  timeout_s: float) -> dict:
    """Launch the app through DVT (`dvt`: a DvtProvider), poll `afc` (house_arrest on its
    container) for the exit status, kill it at the timeout; returns what happened and the
    run folder's files (text, None when absent) and the sysmontap rows."""
    status_path = f"/{WORKDIR}/{run_dir}/exit_status.json"
    rows: list[dict] = []
    out: dict = {"rows": rows}
    async with dvt, ProcessControl(dvt) as pc, DeviceInfo(dvt) as info:
        tap = Sysmontap(dvt, PROCESS_ATTRIBUTES, SYSTEM_ATTRIBUTES, interval_ms=500)

        async def sample():
            try:
                # aclosing: a cancelled async generator left to the GC is finalized on
                # whatever thread collects it, outside this loop
                async with tap, contextlib.aclosing(tap.iter_processes()) as procs_iter:
                    async for procs in procs_iter:
                        rows.extend(procs)
            except Exception as e:  # noqa: BLE001 - a missing sampler is a missing reading
                out["sysmontap_error"] = f"{type(e).__name__}: {e}"
        pid = await pc.launch(A.BUNDLE_ID, args, kill_existing=True, environment=dict(env))
        out["pid"] = pid
        sampler = asyncio.create_task(sample())
        start = time.monotonic()
        try:
            while True:
                await asyncio.sleep(POLL_S)
                if await afc.exists(status_path):
                    out["end"] = "exited"
                    break
                if not await info.is_running_pid(pid):
                    await asyncio.sleep(POLL_S)  # the status may land just after the exit
                    out["end"] = "exited" if await afc.exists(status_path) else "crashed"
                    break
                if time.monotonic() - start >= timeout_s:
                    await pc.kill(pid)
                    out["end"] = "timeout"
                    for _ in range(50):  # return once the app is gone, not before
                        if not await info.is_running_pid(pid):
                            break
                        await asyncio.sleep(0.1)
                    break
        finally:
            sampler.cancel()
            with contextlib.suppress(BaseException):  # the sampler's end is not the run's
                await sampler
    for name in ("stdout.txt", "stderr.txt", "telemetry.jsonl", "exit_status.json"):
        try:
            out[name] = (await afc.get_file_contents(f"/{WORKDIR}/{run_dir}/{name}")
                         ).decode("utf-8", "replace")
        except AfcFileNotFoundError:
            out[name] = None
    await afc.rm(f"/{WORKDIR}/{run_dir}", force=True)
    return out


def run_result(serial: str, argv: tuple, o: dict, duration_s: float, timeout_s: float
               ) -> tuple[RunResult, dict]:
    """(RunResult, the run's sensor facts) from run_app's outcome."""
    stderr = o.get("stderr.txt") or ""
    status = {}
    if o.get("exit_status.json"):
        try:
            status = json.loads(o["exit_status.json"])
        except ValueError:
            stderr += "\nswaplab: the app's exit_status.json is not JSON\n"
    stdout = (o.get("stdout.txt") or "") + (o.get("telemetry.jsonl") or "")
    if status.get("thermal_state_max"):
        stdout = add_thermal_state(stdout, status)
    facts = {"usage": S.app_usage(o.get("rows") or [], o.get("pid")),
             "sysmontap_error": o.get("sysmontap_error"),
             "thermal_state": status.get("thermal_state_max"),
             "thermal_state_simulated": bool(status.get("thermal_state_simulated"))}
    end = o.get("end")
    if end == "timeout":
        stderr += (f"\nswaplab: {argv[0]} (app {A.BUNDLE_ID}, pid {o.get('pid')}) killed "
                   f"after timeout of {timeout_s:g} s\n")
        return RunResult(argv, -9, stdout, stderr, duration_s, True), facts
    if end == "crashed" or "exit_code" not in status:
        stderr += (f"\nswaplab: app {A.BUNDLE_ID} (pid {o.get('pid')}) on {serial} "
                   "ended without writing its exit status: it crashed or was killed "
                   "(crash logs: pymobiledevice3 crash ls)\n")
        return RunResult(argv, 255, stdout, stderr, duration_s, False), facts
    return RunResult(argv, int(status["exit_code"]), stdout, stderr, duration_s, False), facts


def add_thermal_state(telemetry: str, status: Mapping) -> str:
    """The app's thermal states (ProcessInfo.thermalState) into the telemetry summary line."""
    lines = telemetry.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if not lines[i].strip():
            continue
        try:
            obj = json.loads(lines[i])
        except ValueError:
            break
        if isinstance(obj, dict) and obj.get("type") == "summary":
            obj["thermal_state"] = status.get("thermal_state_max")
            obj["thermal_state_end"] = status.get("thermal_state_end")
            lines[i] = json.dumps(obj)
        break
    return "\n".join(lines) + "\n"


