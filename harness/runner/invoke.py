"""The one place that builds, installs and invokes `swap_runner` on a device.

`prepare()` builds the runner for the device's ABI (runner/build.py, cached), pushes the
runner, the model pack and the lab's input images (skipping what the device holds) and
reads the build info. `run_swap()` builds the argv from the profile's run settings and the
requested mode, runs it on the device, validates the telemetry and returns per-stage
times in ms of the measured frames (warm-up excluded). Suites never build argv themselves.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness import REPO_ROOT
from harness.devices import thermal
from harness.devices.base import Device, RunResult, SyncReport
from harness.files import slug
from harness.profiles import RunSettings
from harness.runner.binary_check import BinaryMismatch, check_binary
from harness.runner.telemetry import Telemetry, parse_telemetry

BUILD_PY = REPO_ROOT / "runner" / "build.py"
BINARY = "bin/swap_runner"
#: the runner dlopen()s its video decoder from its own folder (x86_64 builds have one)
VIDEO_PLUGIN = "bin/libswap_video.so"
REMOTE_MODELS = "models"
REMOTE_INPUTS = "inputs"
#: `[run] input` -> the input set the lab's target frames come from (harness.inputs.sets)
INPUT_SETS = {"camera": "camera", "images": "frames", "video": "video"}
#: the modes every lab run measures
LAB_MODES = ("tiny", "small", "base")


class RunnerError(RuntimeError):
    """The runner failed on a device; the message names device, argv and stderr."""


def _load_build_module():
    if not BUILD_PY.is_file():
        raise RunnerError(f"runner build script not found: {BUILD_PY}")
    name = "swaplab_runner_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BUILD_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def build_runner(abi: str, progress: Callable[[str], None] = print,
                 platform: str | None = None) -> Path:
    """Build (or find in the cache) swap_runner for `abi` and `platform` ("android": the
    static phone/emulator build; "linux": this host's; None: build.py's default for the
    ABI); returns the local binary."""
    return Path(_load_build_module().build_runner(abi, progress=progress, platform=platform))


@dataclasses.dataclass
class PreparedRunner:
    """swap_runner installed on a device, with the model pack and the lab inputs."""

    device: Device
    settings: RunSettings
    local_binary: Path
    build_info: dict
    sync: SyncReport
    inputs: Mapping[str, str]  # input set name -> remote path (file or folder)
    env: Mapping[str, str]
    #: name prefix of the run's output folders on the device (the session adds its run id)
    out_prefix: str = "out"

    def describe_sync(self) -> dict:
        return {"pushed": list(self.sync.pushed), "skipped": list(self.sync.skipped),
                "bytes_pushed": self.sync.bytes_pushed}


@dataclasses.dataclass
class RunnerRun:
    """One run of swap_runner: validated telemetry, per-stage ms (measured frames)."""

    argv: tuple[str, ...]
    result: RunResult
    telemetry: Telemetry
    stage_ms: dict[str, list[float]]
    telemetry_path: Path | None = None
    output_images: list[Path] = dataclasses.field(default_factory=list)

    @property
    def summary(self) -> dict:
        return self.telemetry.summary

    @property
    def peak_mb(self) -> float:
        return self.telemetry.summary["peak_rss_kb"] / 1024.0

    @property
    def cold_start_ms(self) -> float:
        """Process start to the first swapped frame: model load + source face + first
        frame (the one definition, as runner/README.md and runner/bench.py use it)."""
        s = self.telemetry.summary
        return (float(s["model_load_ms"]) + float(s.get("source_ms") or 0.0)
                + float(s.get("first_frame_ms") or 0.0))

    def detection_rate(self) -> float | None:
        return self.telemetry.detection_rate()


def model_files(models_dir: Path) -> dict[str, Path]:
    """Files of the model pack a device needs: the manifest and every .param/.bin."""
    manifest = models_dir / "manifest.json"
    if not manifest.is_file():
        raise RunnerError(f"model pack not found: {manifest} is missing")
    files = {f"{REMOTE_MODELS}/manifest.json": manifest}
    data = json.loads(manifest.read_text(encoding="utf-8"))
    for model_id, m in (data.get("models") or {}).items():
        for key in ("param", "bin"):
            p = models_dir / m[key]
            if not p.is_file():
                raise RunnerError(f"model pack: {p} (model {model_id!r}) is missing")
            files[f"{REMOTE_MODELS}/{m[key]}"] = p
    return files


_counter = itertools.count(1)


def prepare(device: Device, settings: RunSettings, models_dir: Path,
            inputs: Mapping[str, Mapping[str, Path]],
            progress: Callable[[str], None] = print) -> PreparedRunner:
    """Build for the device's ABI, push runner + models + inputs, read build info.

    `inputs`: input set name -> {relative file name -> local file}; each set lands in
    `inputs/<name>/` on the device (a set named "source" with one file is a file path).
    """
    # Android devices (phones, emulators, virtual ones) get the static Android build.
    platform = "android" if device.platform == "android" else "linux"
    progress(f"[swaplab] {device.serial}: building swap_runner for {device.abi} {platform} "
             "(first build of ncnn takes several minutes; later runs use the cache)")
    try:
        # iOS: a phone runs the Xcode-built runner app (.ipa); others get a build for the
        # device's ABI and platform
        app_package = getattr(device, "app_package", None)
        app = app_package() if app_package else None
        binary = app or build_runner(device.abi, progress=progress, platform=platform)
    except Exception as e:
        raise RunnerError(f"{device.serial}: building swap_runner for {device.abi} {platform} "
                          f"failed: {e}") from e
    try:  # a clear error now instead of a bare exit 127 from the device's shell
        if app is None:  # an iOS app is signed and checked by the phone itself
            check_binary(binary, serial=device.serial, abi=device.abi, platform=platform,
                         remote=BINARY)
    except BinaryMismatch as e:
        raise RunnerError(str(e)) from None
    files: dict[str, Path] = {BINARY: binary}
    plugin = binary.with_name(Path(VIDEO_PLUGIN).name)
    if plugin.is_file():  # video targets need it next to the binary
        files[VIDEO_PLUGIN] = plugin
    files.update(model_files(models_dir))
    remote_inputs: dict[str, str] = {}
    for set_name, set_files in inputs.items():
        for rel, local in set_files.items():
            files[f"{REMOTE_INPUTS}/{set_name}/{rel}"] = Path(local)
        if len(set_files) == 1 and set_name in ("source", "video"):  # one file, not a folder
            remote_inputs[set_name] = f"{REMOTE_INPUTS}/{set_name}/{next(iter(set_files))}"
        else:
            remote_inputs[set_name] = f"{REMOTE_INPUTS}/{set_name}"
    progress(f"[swaplab] {device.serial}: syncing runner, models and inputs to {device.workdir}")
    report = device.sync(files)
    progress(f"[swaplab] {device.serial}: pushed {len(report.pushed)} files "
             f"({report.bytes_pushed} bytes), {len(report.skipped)} unchanged")
    env = {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(settings.threads)}
    r = device.run([f"./{BINARY}", "--version"], timeout_s=60, env=env)
    if not r.ok:
        raise RunnerError(f"{device.serial}: swap_runner --version failed "
                          f"(exit {r.exit_code}): {r.stderr.strip()[-500:]}")
    try:
        build_info = json.loads(r.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise RunnerError(f"{device.serial}: swap_runner --version printed no JSON: "
                          f"{r.stdout[:200]!r}") from None
    return PreparedRunner(device, settings, binary, build_info, report, remote_inputs, env)


def cool_down(device: Device, settings: RunSettings,
              progress: Callable[[str], None] = print, poll_s: float = 5.0) -> dict:
    """Wait until the device is at or below the profile's cool-down temperature (up to
    `cooldown_timeout_s`; harness.devices.thermal, simulated sensors by its rule), then
    measure either way. Returns what happened, for the record."""
    cd = thermal.cool_down(device, settings.cooldown_temperature_c,
                           settings.cooldown_timeout_s, progress=progress, poll_s=poll_s)
    if not cd.ok:
        progress(f"[swaplab] {cd.skip_reason}; measuring anyway")
    return cd.info


def runner_argv(prepared: PreparedRunner, *, mode: str | None = None, source: str | None = None,
                target: str = "frames", warmup: int | None = None, frames: int | None = None,
                enhance: str | None = None, blend: str | None = None,
                out_dir: str | None = None, save_every: int = 0,
                backend: str | None = None, extra: Sequence[str] = ()) -> list[str]:
    """argv for one run; `target`/`source` name input sets (or remote paths). The lab's
    own target frames ("frames") come as the profile's `[run] input` says: camera-like
    frames at the camera's rate, images, or a video. `backend` (runner --backend) defaults
    to the profile's [run] backend."""
    s = prepared.settings
    paced = target == "frames" and s.input == "camera"
    if target == "frames" and s.input in INPUT_SETS:
        target = INPUT_SETS[s.input]
    argv = [f"./{BINARY}", "--models", REMOTE_MODELS,
            "--source", prepared.inputs.get(source or "source", source or ""),
            "--target", prepared.inputs.get(target, target),
            "--mode", mode or s.mode,
            "--warmup", str(s.warmup_frames if warmup is None else warmup),
            "--frames", str(s.measured_frames if frames is None else frames),
            "--threads", str(s.threads),
            "--telemetry", "-"]
    if s.cpu_list:
        argv += ["--cpu-affinity", s.cpu_list]
    # Only when not the default: a baseline runner of an older commit (A/B) has no such flag.
    if s.faces != "all":
        argv += ["--faces", s.faces]
    if s.small_faces != "full-range":
        argv += ["--small-faces", s.small_faces]
    if paced:
        argv += ["--camera-fps", f"{s.camera_fps:g}"]
    for p in s.placement:
        argv += ["--placement", p]
    if enhance:
        argv += ["--enhance", enhance]
    if blend:
        argv += ["--blend", blend]
    if out_dir and save_every:
        argv += ["--out", out_dir, "--save-every", str(save_every)]
    if (backend or s.backend) != "cpu":
        argv += ["--backend", backend or s.backend]
    argv += list(extra)
    return argv


def describe_exit(code: int) -> str:
    """'exited 3' or 'killed by signal 11 (SIGSEGV)' (negative codes, or 128+N from a
    shell as adb reports them)."""
    sig = -code if code < 0 else code - 128 if 128 < code < 160 else None
    if sig:
        try:
            return f"killed by signal {sig} ({signal.Signals(sig).name})"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exited {code}"


def _error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("swap_runner: error:"):
            return ln
    return lines[-1] if lines else "(no stderr)"


def check_run(device: Device, argv: Sequence[str], result: RunResult, label: str,
              artifacts_dir: Path | None) -> tuple[Telemetry, Path | None]:
    """Keep the run's telemetry as an artifact (before judging it: a crash's partial
    telemetry is evidence), raise RunnerError on timeout or a non-zero exit, and parse
    the telemetry (TelemetryError names device and file)."""
    telemetry_path = None
    if artifacts_dir is not None:
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        telemetry_path = artifacts_dir / f"{slug(label, empty='run')}.telemetry.jsonl"
        telemetry_path.write_text(result.stdout, encoding="utf-8")
    if result.timed_out:
        raise RunnerError(f"{device.serial}: swap_runner timed out after {result.duration_s:.0f} s: "
                          f"{' '.join(argv)}")
    if result.exit_code != 0:
        raise RunnerError(f"{device.serial}: swap_runner {describe_exit(result.exit_code)}: "
                          f"{_error_line(result.stderr)} [argv: {' '.join(argv)}]")
    source = f"{device.serial}:{telemetry_path.name if telemetry_path else label}"
    return parse_telemetry(result.stdout, source=source), telemetry_path


def run_swap(prepared: PreparedRunner, *, label: str = "run",
             artifacts_dir: Path | None = None, max_images: int = 4,
             timeout_s: float | None = None, binary: str | None = None,
             **kwargs) -> RunnerRun:
    """Run swap_runner once; keeps telemetry (and output frames when `save_every` is
    given) under `artifacts_dir`. `binary`: another build already on the device (the A/B
    baseline, ab.push_baseline) instead of this one. Raises RunnerError / TelemetryError
    with the device."""
    device = prepared.device
    save_every = int(kwargs.pop("save_every", 0) or 0)
    run_name = f"{next(_counter):03d}-{slug(label, empty='run')}"
    # one folder level: the runner creates --out itself but not its parents
    remote_out = f"{prepared.out_prefix}-{run_name}" if save_every else None
    argv = runner_argv(prepared, out_dir=remote_out, save_every=save_every, **kwargs)
    if binary:
        argv[0] = binary
    if remote_out:
        device.remove(remote_out)
    result = device.run(argv, timeout_s=timeout_s or prepared.settings.timeout_s,
                        env=prepared.env, cpu_list=None)
    telemetry, telemetry_path = check_run(device, argv, result, label, artifacts_dir)
    images: list[Path] = []
    if remote_out and artifacts_dir is not None:
        names = [n for n in device.listdir(remote_out) if n.lower().endswith((".jpg", ".png"))]
        for n in names[:max_images]:
            local = artifacts_dir / f"{slug(label, empty='run')}-{slug(n, empty='run')}"
            device.pull(f"{remote_out}/{n}", local)
            images.append(local)
        device.remove(remote_out)
    return RunnerRun(tuple(argv), result, telemetry, telemetry.stage_ms(), telemetry_path, images)
