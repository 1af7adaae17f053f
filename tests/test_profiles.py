"""Device profiles: the shipped ones are valid and match the issue; bad ones fail with
file, key and expected type."""

from pathlib import Path
from typing import ClassVar

import pytest

from harness.devices.base import Device
from harness.profiles import ProfileError, load_profile, load_profiles, match_profile

REPO = Path(__file__).resolve().parent.parent

GOOD = """
name = "p"
marker = "p"
platform = "android"
[match]
soc_model = ["SM6450"]
[targets]
latency_p95_ms = 120.0
[run]
threads = 4
"""


class FakeDevice(Device):
    def __init__(self, props, kind="android", serial="s1"):
        self.kind = kind
        super().__init__(serial, "Fake", "android", "arm64-v8a", props, "/data/local/tmp/x")

    def sync(self, files): ...
    def pull(self, remote_path, local_path): ...
    def listdir(self, remote_path): return []
    def remove(self, remote_path): ...
    def run(self, argv, timeout_s, env=None, cpu_list=None): ...
    def start(self, argv, env=None): ...


def test_shipped_profiles():
    profiles = load_profiles(REPO / "device_profiles")
    assert {"host", "snapdragon6", "snapdragon865", "snapdragon8gen2"} <= set(profiles)
    assert any(p.platform == "ios" for p in profiles.values())
    sd6, sd865, sd8 = profiles["snapdragon6"], profiles["snapdragon865"], profiles["snapdragon8gen2"]
    assert sd6.match["soc_model"] == ("SM6450",) and sd6.match["board_platform"] == ("parrot",)
    assert sd6.targets == {"latency_p95_ms": 120.0, "memory_peak_mb": 120.0}
    assert sd865.match["board_platform"] == ("kona",)
    assert sd865.targets["blend_p95_ms"] == 60.0 and sd865.targets["latency_p95_ms"] == 120.0
    assert sd8.match["board_platform"] == ("kalama",) and sd8.targets["power_avg_w"] == 1.8
    for p in profiles.values():
        assert p.run.threads >= 1 and p.run.measured_frames >= 1
    assert profiles["host"].run.threads == 1
    assert profiles["host"].run.ab_rounds == 80 and profiles["snapdragon6"].run.ab_rounds == 40


def test_matching_prefers_soc_then_platform():
    profiles = load_profiles(REPO / "device_profiles")
    p, why = match_profile(FakeDevice({"ro.soc.model": "SM8550"}), profiles)
    assert p.name == "snapdragon8gen2" and "SM8550" in why
    p, _ = match_profile(FakeDevice({"ro.board.platform": "parrot"}), profiles)
    assert p.name == "snapdragon6"
    p, _ = match_profile(FakeDevice({"ro.soc.model": "SM8250", "ro.board.platform": "parrot"}),
                         profiles)
    assert p.name == "snapdragon865"
    p, why = match_profile(FakeDevice({"ro.soc.model": "MT6789"}), profiles)
    assert p is None and "no profile" in why
    p, _ = match_profile(FakeDevice({}, kind="local", serial="local"), profiles)
    assert p.name == "host"


@pytest.mark.parametrize("edit, key, expected", [
    (("threads = 4", 'threads = "4"'), "run.threads", "expected integer, got string '4'"),
    (("latency_p95_ms = 120.0", 'latency_p95_ms = "fast"'), "targets.latency_p95_ms",
     "expected number"),
    (('soc_model = ["SM6450"]', 'soc_model = "SM6450"'), "match.soc_model",
     "expected array of strings"),
    (('marker = "p"\n', ""), "marker", "missing; expected string"),
    (('platform = "android"', 'platform = "symbian"'), "platform", "expected one of"),
    (("latency_p95_ms", "latency_p96_ms"), "targets.latency_p96_ms", "unknown target"),
    (("threads = 4", "thread = 4"), "run.thread", "unknown key"),
    (("threads = 4", 'cpu_list = "four"'), "run.cpu_list", "expected a CPU list"),
    (("threads = 4", 'min_battery_pct = "low"'), "run.min_battery_pct",
     "expected number, got string 'low'"),
    (("threads = 4", "min_battery_pct = 120"), "run.min_battery_pct",
     "expected a percentage from 0 to 100, got 120"),
    (("threads = 4", "ab_rounds = 4"), "run.ab_rounds", "expected an integer >= 8, got 4"),
    (("threads = 4", 'threads = 4\nfaces = "some"'), "run.faces",
     "expected one of all, largest, best, got 'some'"),
    (("threads = 4", 'threads = 4\nsmall_faces = "tiling"'), "run.small_faces",
     "expected one of full-range, tiles, always, always-tiles, off, got 'tiling'"),
    # TOML booleans are not integers (Python's bool is an int subclass)
    (("threads = 4", "threads = true"), "run.threads", "expected integer, got boolean True"),
    (("threads = 4", "threads = 4\nmeasured_frames = false"), "run.measured_frames",
     "expected integer, got boolean False"),
    (("latency_p95_ms = 120.0", "latency_p95_ms = true"), "targets.latency_p95_ms",
     "expected number, got boolean True"),
    (("latency_p95_ms = 120.0", "latency_p95_ms = -1.0"), "targets.latency_p95_ms",
     "expected a number >= 0, got -1.0"),
    (("latency_p95_ms = 120.0", "memory_peak_mb = -120"), "targets.memory_peak_mb",
     "expected a number >= 0, got -120.0"),
    # TOML has nan and inf: a NaN target passes every comparison and breaks the record
    (("latency_p95_ms = 120.0", "latency_p95_ms = nan"), "targets.latency_p95_ms",
     "expected a finite number, got nan"),
    (("latency_p95_ms = 120.0", "latency_p95_ms = inf"), "targets.latency_p95_ms",
     "expected a finite number, got inf"),
    (("threads = 4", "threads = 4\ntimeout_s = -inf"), "run.timeout_s",
     "expected a finite number, got -inf"),
    (("threads = 4", "threads = 4\ntimeout_s = -5"), "run.timeout_s",
     "expected a number of seconds > 0, got -5"),
    (("threads = 4", "threads = 4\ncooldown_timeout_s = 0"), "run.cooldown_timeout_s",
     "expected a number of seconds > 0, got 0"),
    (("threads = 4", "threads = 4\n[quality]\ncolour_de_max = nan"), "quality.colour_de_max",
     "expected a finite number, got nan"),
    # a typo in a table name must not silently turn its settings off
    (("[targets]", "[targts]"), "targts", "unknown table (did you mean 'targets'?)"),
    (("threads = 4", "threads = 4\n[qualty]\ncolour_de_max = 4"), "qualty",
     "unknown table (did you mean 'quality'?)"),
    (("threads = 4", "thraeds = 4"), "run.thraeds", "unknown key (did you mean 'threads'?)"),
    # [run] backend: the runner's --backend, per net or for all (targets apply to it)
    (("threads = 4", 'threads = 4\nbackend = "gpu"'), "run.backend",
     "expected one of cpu, vulkan, auto or NET=B,..., got 'gpu'"),
    (("threads = 4", 'threads = 4\nbackend = "mesh=vulkan"'), "run.backend",
     "unknown net 'mesh'"),
    (("threads = 4", 'threads = 4\nbackend = "detect=cpu,seg=fast"'), "run.backend",
     "seg: expected one of cpu, vulkan, auto, got 'fast'"),
    (("threads = 4", "threads = 4\nbackend = 1"), "run.backend", "expected string, got integer 1"),
    (("threads = 4", 'threads = 4\n[virtual]\ngpu = "yes"'), "virtual.gpu",
     "expected boolean, got string 'yes'"),
])
def test_errors_name_file_key_and_type(tmp_path, edit, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(ProfileError) as e:
        load_profile(path)
    msg = str(e.value)
    assert str(path) in msg and f"key '{key}'" in msg and expected in msg, msg


def test_invalid_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(ProfileError, match="broken.toml: invalid TOML"):
        load_profile(path)


def test_good_profile_loads(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    p = load_profile(path)
    assert p.run.threads == 4 and p.run.warmup_frames == 5 and p.targets["latency_p95_ms"] == 120
    assert p.run.min_battery_pct == 25.0  # the Android battery gate's default
    path.write_text(GOOD.replace("threads = 4", "threads = 4\nmin_battery_pct = 40"))
    assert load_profile(path).run.min_battery_pct == 40.0
    assert p.run.faces == "all" and p.run.small_faces == "full-range"
    assert p.run.backend == "cpu"  # targets apply to the CPU path unless the profile says
    path.write_text(GOOD.replace("threads = 4", 'threads = 4\nbackend = "detect=cpu,landmarks=vulkan"'))
    assert load_profile(path).run.backend == "detect=cpu,landmarks=vulkan"


def test_face_settings_reach_the_runner_argv(tmp_path):
    """`[run] faces` / `small_faces` become runner flags; the defaults add none (an older
    baseline runner of an A/B run has no such flags)."""
    from harness.runner.invoke import runner_argv

    class Prepared:  # the two attributes runner_argv reads
        inputs: ClassVar[dict] = {}

    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    prepared = Prepared()
    prepared.settings = load_profile(path).run
    assert "--faces" not in runner_argv(prepared) and "--small-faces" not in runner_argv(prepared)
    for small_faces in ("off", "always-tiles"):
        path.write_text(GOOD.replace("threads = 4", f'threads = 4\nfaces = "best"\nsmall_faces = "{small_faces}"'))
        prepared.settings = load_profile(path).run
        argv = runner_argv(prepared)
        assert argv[argv.index("--faces") + 1] == "best"
        assert argv[argv.index("--small-faces") + 1] == small_faces


def test_plugin_reports_bad_profile(pytester, tmp_path):
    bad = tmp_path / "profiles"
    bad.mkdir()
    (bad / "snapdragon6.toml").write_text(GOOD.replace("threads = 4", 'threads = "many"'))
    pytester.makepyfile("def test_x(device):\n    pass\n")
    result = pytester.runpytest("--profiles-dir", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([("*invalid device profile*snapdragon6.toml: key 'run.threads':"
                                 " expected integer, got string 'many'*")])


def test_input_defaults_by_platform_and_camera_settings(tmp_path):
    """Phones default to camera-like input at 30 fps, this host to images; `[cpu]` becomes
    the runner's --placement and `[thermal]` its ladder."""
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    assert (load_profile(path).run.input, load_profile(path).run.camera_fps) == ("camera", 30.0)
    path.write_text(GOOD.replace('platform = "android"', 'platform = "linux"'))
    assert load_profile(path).run.input == "images"
    path.write_text(GOOD.replace("threads = 4", 'threads = 4\ninput = "images"\ncamera_fps = 60')
                    + '[cpu]\nclusters = [{name = "little", cpus = "0-3"}, '
                      '{name = "big", cpus = "4-7"}]\n'
                      'placement = {detect = "little:1", landmarks = "big:2"}\n'
                      '[thermal]\nfallback = ["fps", "gpu", "mode"]\nfps_low = 10\n')
    p = load_profile(path)
    assert (p.run.input, p.run.camera_fps) == ("images", 60.0)
    assert p.run.placement == ("detect=0-3:1", "landmarks=4-7:2")
    assert p.extra["thermal"]["fallback"] == ["fps", "gpu", "mode"]


@pytest.mark.parametrize("edit,key,expected", [
    (("threads = 4", 'threads = 4\ninput = "jpeg"'), "run.input",
     "expected one of camera, images, video, got 'jpeg'"),
    (("threads = 4", 'threads = 4\ninput = "video"'), "run.input",
     "video input needs the linux build's video decoder"),
    (("threads = 4", "threads = 4\ncamera_fps = 0"), "run.camera_fps",
     "expected frames per second > 0"),
    (("threads = 4", 'threads = 4\n[thermal]\nfallback = ["fps", "heat"]'), "thermal.fallback",
     "unknown rung 'heat'"),
    (("threads = 4", 'threads = 4\n[thermal]\nfallback = ["fps", "fps"]'), "thermal.fallback",
     "a rung is named twice"),
    (("threads = 4", ('threads = 4\n[cpu]\nclusters = [{name = "big", cpus = "4-7"}]\n'
                      'placement = {detect = "little:1"}')), "cpu.placement.detect",
     "no cluster 'little' in cpu.clusters (big)"),
    (("threads = 4", 'threads = 4\n[cpu]\nclusters = [{name = "big", cpus = "four"}]'),
     "cpu.clusters[0].cpus", "expected a CPU list"),
    (("threads = 4", ('threads = 4\n[cpu]\nclusters = [{name = "big", cpus = "4-7"}]\n'
                      'placement = {mesh = "big:1"}')), "cpu.placement.mesh", "unknown net"),
])
def test_camera_thermal_and_cpu_errors_name_the_key(tmp_path, edit, key, expected):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(ProfileError) as e:
        load_profile(path)
    msg = str(e.value)
    assert str(path) in msg and f"key '{key}'" in msg and expected in msg, msg
