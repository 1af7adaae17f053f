"""The power and thermal suites on this host (the embedded default device) with the
stand-in runner: the sustained run measures what the host can (temperatures and CPU
frequencies where readable, CPU energy from RAPL where readable) and leaves the rest out
with the reason; the fallback suite skips without a thermal limit in the profile."""

from __future__ import annotations

import json

from helpers.lab import REPO, run_pytest_subprocess
from test_suites_fake_runner import install_stand_in_runner


def test_power_suites_on_host_measure_what_they_can(tmp_path, fast_profiles, local_only):
    install_stand_in_runner(tmp_path)
    host = fast_profiles / "host.toml"
    host.write_text(host.read_text() + "\n[power]\nsustained_duration_host_s = 3\n"
                                       "sample_interval_s = 0.5\n")
    out = tmp_path / "out"
    r = run_pytest_subprocess([str(REPO / "suites" / "test_power.py"),
                               str(REPO / "suites" / "test_thermal.py"), "-p", "fake_build",
                               "--profiles-dir", str(fast_profiles), "--lab-out", str(out),
                               "-v", "-rs"], cwd=tmp_path, timeout=600,
                              env={"PYTHONPATH": str(tmp_path),
                                   "SWAPLAB_CACHE": str(tmp_path / "cache"),
                                   "SWAPLAB_BACKENDS": "local"})
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]
    record = json.loads((out / "latest" / "record.json").read_text())
    outcome = {t["nodeid"].split("::")[-1].split("[")[0]: t for t in record["tests"]}
    assert outcome["test_sustained_power"]["outcome"] == "passed"
    fb = outcome["test_thermal_fallback"]
    assert fb["outcome"] == "skipped" and "thermal_limit_c" in fb["message"]
    lat = next(m for m in record["measurements"] if m["metric"] == "latency_total_ms")
    unmeasured = lat["extra"]["unmeasured"]
    metrics = {m["metric"] for m in record["measurements"]}
    # power: RAPL where readable, else left out with the reason - never a made-up value
    if "power_avg_w" in metrics:
        assert not lat["extra"]["simulated"]
    else:
        assert "RAPL" in unmeasured["power_avg_w"], unmeasured
        assert "energy_per_frame_mj" in unmeasured
    run_dir = (out / "latest").resolve()
    doc = next(json.loads((run_dir / a["path"]).read_text()) for a in record["artifacts"]
               if a["kind"] == "samples")
    assert doc["kind"] == "sustained" and doc["samples"] and doc["frames"]
    assert doc["sampling"]["sampler"].startswith("host thread")
