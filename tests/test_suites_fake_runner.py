"""Every suite end to end against a stand-in runner that speaks the telemetry contract,
so suite logic (records, verdicts, low-light comparison, report) is tested in seconds.
The real runner and models are exercised by test_report.py::test_report_renders_for_a_real_run."""

import json
import textwrap
from pathlib import Path

import pytest
from helpers.lab import REPO, device_python, run_pytest_subprocess, write_fake_runner

pytestmark = pytest.mark.usefixtures("local_only")
MY_SUITES = [str(REPO / "suites" / f"test_{n}.py")
             for n in ("latency", "cold_start", "memory", "modes", "low_light")]

FAKE_RUNNER_BODY = r'''
assert os.path.isfile(os.path.join(a.models, "manifest.json")), "models not pushed"
assert os.path.exists(a.source) and os.path.exists(a.target), "inputs not pushed"
S = ["decode", "enhance", "detect", "landmarks", "align", "warp", "color", "mask", "blend"]
dark = "dark" in a.target
for i in range(a.warmup + a.frames):
    st = {s: (i % 3 + 1) * 1000000 for s in S}
    if a.enhance != "on":
        st["enhance"] = 0
    st["total"] = sum(st.values())
    faces = 0 if (dark and a.enhance != "on" and i % 2) else 1
    print(json.dumps({"type": "frame", "schema": "swaplab.telemetry/1", "index": i,
                      "warmup": i < a.warmup, "source_frame": 0, "faces": faces,
                      "mode": a.mode, "enhanced": a.enhance == "on", "detected": True,
                      "stage_ns": st, "de_before": 7.1, "de_after": 3.2,
                      "tone_compensated": True, "rss_kb": 40000, "temp_c": None}))
    if a.out and a.save_every and i >= a.warmup and (i - a.warmup) % a.save_every == 0:
        os.makedirs(a.out, exist_ok=True)
        shutil.copy(a.source, os.path.join(a.out, "out_%d.jpg" % i))
print_summary()
'''

PLUGIN = '''
from pathlib import Path
import harness.runner.invoke
harness.runner.invoke.build_runner = lambda abi, progress=print, **kw: Path({runner!r})
'''


def install_stand_in_runner(tmp_path) -> Path:
    """The stand-in runner at tmp_path/swap_runner, and a pytest plugin `fake_build`
    (tmp_path/fake_build.py; load it with -p fake_build and tmp_path on PYTHONPATH) that
    makes the harness use it instead of building the real one."""
    # stdlib only, so it also runs on a virtual device (as nobody)
    runner = write_fake_runner(tmp_path / "swap_runner", FAKE_RUNNER_BODY, device_python())
    (tmp_path / "fake_build.py").write_text(PLUGIN.format(runner=str(runner)))
    return runner


def test_all_suites_with_stand_in_runner(tmp_path, fast_profiles):
    install_stand_in_runner(tmp_path)
    out = tmp_path / "out"
    r = run_pytest_subprocess([*MY_SUITES, "-p", "fake_build", "--profiles-dir",
                               str(fast_profiles), "--lab-out", str(out), "-v"],
                              cwd=tmp_path, timeout=600,
                              env={"PYTHONPATH": str(tmp_path),
                                   "SWAPLAB_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1].startswith("SwapLab report: ")
    record = json.loads((out / "latest" / "record.json").read_text())
    assert record["status"] == "finished"
    outcomes = {t["nodeid"].split("::")[-1]: t["outcome"] for t in record["tests"]}
    assert outcomes == {
        "test_cold_start[local]": "passed", "test_latency[local]": "passed",
        "test_low_light_detection[local-lowlight]": "passed",
        "test_low_light_detection[local-dark_gamma]": "passed",
        "test_low_light_detection[local-dark_extreme]": "passed",
        "test_peak_memory[local]": "passed", "test_mode[local-tiny]": "passed",
        "test_mode[local-small]": "passed", "test_mode[local-base]": "passed"}, outcomes
    by = {}
    for m in record["measurements"]:
        by.setdefault((m["metric"], m["extra"].get("variant")), m)
    total = by[("latency_total_ms", "mode=small")]
    assert len(total["samples"]) == 3, "warm-up frames must be excluded"
    assert total["target"]["verdict"] == "pass"
    assert by[("cold_start_ms", "mode=small")]["samples"] == [52.5]
    assert by[("memory_peak_mb", "mode=small")]["summary"]["max"] == 50.0
    assert by[("low_light_detection_rate_enhanced", "dark_gamma")]["summary"]["mean"] == 1.0
    assert by[("low_light_detection_rate_plain", "dark_gamma")]["summary"]["mean"] < 1.0
    for mode in ("tiny", "small", "base"):
        assert ("latency_blend_ms", f"mode={mode}") in by
    assert record["devices"]["local"]["sync"]["pushed"]
    html = (out / "latest" / "index.html").read_text()
    assert "<svg" in html and "<img" in html and "verdicts" in html
    # a second session pushes nothing new (hash-cached sync)
    r2 = run_pytest_subprocess([str(REPO / "suites" / "test_memory.py"), "-p", "fake_build",
                                "--profiles-dir", str(fast_profiles), "--lab-out", str(out)],
                               cwd=tmp_path, timeout=600,
                               env={"PYTHONPATH": str(tmp_path),
                                    "SWAPLAB_CACHE": str(tmp_path / "cache")})
    assert r2.returncode == 0, r2.stdout[-3000:]
    sync = json.loads((out / "latest" / "record.json").read_text())["devices"]["local"]["sync"]
    assert sync["pushed"] == [] and sync["skipped"]


def test_failing_target_in_a_suite_names_everything(tmp_path, fast_profiles):
    install_stand_in_runner(tmp_path)
    (fast_profiles / "host.toml").write_text(textwrap.dedent("""
        name = "host"
        marker = "host"
        platform = "linux"
        [match]
        kind = ["local"]
        [targets]
        latency_p95_ms = 5.0
        [run]
        threads = 1
        warmup_frames = 1
        measured_frames = 3
    """))
    r = run_pytest_subprocess([str(REPO / "suites" / "test_latency.py"), "-p", "fake_build",
                               "--profiles-dir", str(fast_profiles), "--lab-out",
                               str(tmp_path / "out")], cwd=tmp_path, timeout=600,
                              env={"PYTHONPATH": str(tmp_path),
                                   "SWAPLAB_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 1
    assert ("device 'local'" in r.stdout and "latency_total_ms [mode=small] p95 = " in r.stdout
            and "target latency_p95_ms <= 5.00 ms" in r.stdout), r.stdout[-3000:]
    html = (tmp_path / "out" / "latest" / "index.html").read_text()
    assert '<span class="verdict fail">fail</span>' in html
