"""What a two-run verdict needs besides the samples (issue 15): enough history to know the
run-to-run noise, and runs taken with the same runner settings (threads, CPU set, mode,
frames, input, build flags); the baseline search skips runs with other settings."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers.records import make_record, seed_history

from harness.history import compare as C
from harness.history import store as H
from harness.history.baseline import BaselineError, resolve_baseline
from harness.profiles import ProfileError, load_profile
from harness.runner.settings import merge_settings, runner_settings
from harness.stats.trust import MIN_HISTORY, settings_differ

ARGV = ["./bin/swap_runner", "--models", "models", "--source", "inputs/source/a.jpg",
        "--target", "inputs/frames", "--mode", "small", "--warmup", "3", "--frames", "30",
        "--threads", "1", "--telemetry", "-", "--cpu-affinity", "0", "--out", "out-x-001",
        "--save-every", "15", "--blend-compare"]
BUILD = {"compiler": "Clang 16", "ncnn_version": "1.0.20240410", "abi": "x86_64",
         "platform": "linux", "isa": ["sse2", "avx2"], "build_type": "Release",
         "ncnn_fp16": False, "omp_wait_policy": "PASSIVE", "threads": 1}


def _slower(rec: dict, factor: float) -> dict:
    for m in rec["measurements"]:
        if m["metric"] == "latency_total_ms":
            m["samples"] = [v * factor for v in m["samples"]]
            m["summary"]["p95"] = float(np.percentile(m["samples"], 95))
    return rec


def _with_runner(rec: dict, **settings) -> dict:
    s = runner_settings(ARGV, BUILD)
    s.update(settings)
    for m in rec["measurements"]:
        m.setdefault("extra", {})["runner"] = dict(s)
    return rec


def _total(rows):
    return next(r for r in rows if r.metric == "latency_total_ms" and r.device == "emu-1")


# --- minimum history ----------------------------------------------------------------------


def test_two_runs_without_history_never_regress(tmp_path):
    """28% slower, p ~ 1e-30, but nothing says how much this device's runs differ: the
    verdict is unknown with the count and the need, and the gate passes."""
    db = tmp_path / "h.sqlite"
    H.import_record(db, make_record("BASE", started="2026-11-22T10:00:00Z", seed=1))
    H.import_record(db, _slower(make_record("CAND", started="2026-11-23T10:00:00Z", seed=2),
                                1.28))
    comp = C.compare(db, "CAND", baseline_run_id="BASE")
    tot = _total(comp.rows)
    assert tot.verdict == "unknown"
    assert tot.reason.startswith(f"too little history (1 runs, need {MIN_HISTORY})")
    assert "was: regressed" in tot.reason
    assert comp.exit_status == 0 and not any(ln.startswith("REGRESSED") for ln in comp.gate_lines)
    # one run short of the minimum: still unknown; at the minimum: regressed
    seed_history(db, make_record("BASE", seed=1), MIN_HISTORY - 2)
    assert _total(C.compare_runs(db, "BASE", "CAND")).reason.startswith(
        f"too little history ({MIN_HISTORY - 1} runs, need {MIN_HISTORY})")
    seed_history(db, make_record("BASE", seed=1), 1, start_day=2)
    assert _total(C.compare_runs(db, "BASE", "CAND")).verdict == "regressed"


def test_profile_sets_its_own_minimum(tmp_path):
    db = tmp_path / "h.sqlite"
    H.import_record(db, make_record("BASE", started="2026-11-22T10:00:00Z", seed=1))
    seed_history(db, make_record("BASE", seed=1), 2)
    H.import_record(db, _slower(make_record("CAND", started="2026-11-23T10:00:00Z", seed=2),
                                1.28))
    assert _total(C.compare_runs(db, "BASE", "CAND")).verdict == "unknown"
    need = C.min_history_for({"host": {"regression": {"min_history": 3}}})
    assert need == {"host": 3}
    assert _total(C.compare_runs(db, "BASE", "CAND", min_history=need)).verdict == "regressed"
    need = C.min_history_for({"host": {"regression": {"min_history": 8}}})
    assert "need 8" in _total(C.compare_runs(db, "BASE", "CAND", min_history=need)).reason


def test_history_of_other_runner_settings_does_not_count(tmp_path):
    """Runs with 2 threads say nothing about the run-to-run noise of 1-thread runs."""
    db = tmp_path / "h.sqlite"
    base = _with_runner(make_record("BASE", started="2026-11-22T10:00:00Z", seed=1))
    H.import_record(db, base)
    seed_history(db, _with_runner(make_record("OTHER", seed=5), threads="2"), 6)
    H.import_record(db, _slower(_with_runner(
        make_record("CAND", started="2026-11-23T10:00:00Z", seed=2)), 1.28))
    assert _total(C.compare_runs(db, "BASE", "CAND")).reason.startswith(
        "too little history (1 runs")
    seed_history(db, base, 4, start_day=2)
    assert _total(C.compare_runs(db, "BASE", "CAND")).verdict == "regressed"


def test_min_history_is_validated(tmp_path):
    p = tmp_path / "p.toml"
    head = ('name = "p"\nmarker = "p"\nplatform = "linux"\n[match]\nkind = ["local"]\n'
            "[run]\n[regression]\n")
    p.write_text(head + "min_history = 3\nthreshold = 0.04\n")
    prof = load_profile(p)
    assert C.min_history_for({"p": prof}) == {"p": 3}
    assert C.thresholds_for({"p": prof}) == {"p:*": 0.04}  # not a threshold
    for bad in ("1", "2.5", '"5"', "true"):
        p.write_text(head + f"min_history = {bad}\n")
        with pytest.raises(ProfileError, match=re.escape("regression.min_history")):
            load_profile(p)


# --- runner settings ------------------------------------------------------------------------


def test_runner_settings_from_argv_and_build():
    s = runner_settings(ARGV, BUILD)
    assert s["threads"] == "1" and s["mode"] == "small" and s["cpu_affinity"] == "0"
    assert s["target"] == "inputs/frames" and s["warmup"] == "3" and s["frames"] == "30"
    assert s["blend_compare"] is True
    assert s["build.isa"] == ["sse2", "avx2"] and s["build.build_type"] == "Release"
    # where output goes and the code's versions are not settings
    assert not {"models", "telemetry", "out", "save_every", "build.compiler",
                "build.ncnn_version", "build.threads"} & set(s)
    both = merge_settings(s, runner_settings([*ARGV, "--enhance", "on"], BUILD))
    both = merge_settings(both, runner_settings([*ARGV, "--enhance", "off"], BUILD))
    assert both["enhance"] == {"values": ["off", "on"]} and both["threads"] == "1"


def test_settings_differ_names_each_difference():
    a = runner_settings(ARGV, BUILD)
    assert settings_differ(a, dict(a)) is None
    assert settings_differ(None, a) is None and settings_differ(a, {}) is None
    b = {**a, "threads": "2", "build.build_type": "Debug"}
    assert settings_differ(a, b) == ("runner settings differ (build.build_type Release vs "
                                     "Debug, threads 1 vs 2; baseline vs candidate)")
    assert settings_differ(a, {"threads": "1", "backend": "vulkan"}) is None  # not both


def test_runs_with_other_runner_settings_are_not_compared(tmp_path):
    """Same code, 2 threads instead of 1: faster, but not "improved"; slower, not
    "regressed"; and not even "same" (they measured different things)."""
    db = tmp_path / "h.sqlite"
    base = _with_runner(make_record("BASE", started="2026-11-22T10:00:00Z", seed=1))
    H.import_record(db, base)
    seed_history(db, base, 5)
    H.import_record(db, _slower(_with_runner(
        make_record("CAND", started="2026-11-23T10:00:00Z", seed=2), threads="2"), 1.28))
    comp = C.compare(db, "CAND", baseline_run_id="BASE")
    assert {r.verdict for r in comp.rows} == {"unknown"}
    tot = _total(comp.rows)
    assert tot.reason.startswith("runner settings differ (threads 1 vs 2; baseline vs "
                                 "candidate); was: regressed")
    assert comp.exit_status == 0
    # the same settings: the slowdown is a regression
    H.import_record(db, _slower(_with_runner(
        make_record("CAND2", started="2026-11-24T10:00:00Z", seed=3)), 1.28))
    assert _total(C.compare_runs(db, "BASE", "CAND2")).verdict == "regressed"


def test_device_level_settings_count_when_a_test_has_none(tmp_path):
    """Tests that run the runner without the `swap` fixture (power, thermal) have the
    profile's settings, recorded with the device."""
    db = tmp_path / "h.sqlite"
    base = make_record("BASE", started="2026-11-22T10:00:00Z", seed=1)
    base["devices"]["emu-1"]["runner_settings"] = {"threads": "1", "cpu_affinity": "4-7"}
    H.import_record(db, base)
    cand = make_record("CAND", started="2026-11-23T10:00:00Z", seed=2)
    cand["devices"]["emu-1"]["runner_settings"] = {"threads": "1", "cpu_affinity": "0-3"}
    H.import_record(db, cand)
    tot = _total(C.compare_runs(db, "BASE", "CAND"))
    assert tot.verdict == "unknown"
    assert tot.reason.startswith("runner settings differ (cpu_affinity 4-7 vs 0-3")


def test_baseline_search_skips_runs_with_other_settings(tmp_path):
    db = tmp_path / "h.sqlite"
    H.import_record(db, _with_runner(make_record("ONE", started="2026-11-20T10:00:00Z")))
    H.import_record(db, _with_runner(make_record("TWO", started="2026-11-21T10:00:00Z"),
                                     threads="2"))
    H.import_record(db, _with_runner(make_record("CAND", started="2026-11-23T10:00:00Z")))
    assert resolve_baseline(db, "main", exclude_run_id="CAND") == "ONE"
    assert resolve_baseline(db, "latest", exclude_run_id="CAND") == "ONE"
    assert resolve_baseline(db, "TWO", exclude_run_id="CAND") == "TWO"  # named: as given
    only = tmp_path / "only.sqlite"
    H.import_record(only, _with_runner(make_record("TWO", started="2026-11-21T10:00:00Z"),
                                       threads="2"))
    H.import_record(only, _with_runner(make_record("CAND", started="2026-11-23T10:00:00Z")))
    with pytest.raises(BaselineError, match=r"none is comparable .*same runner settings; "
                                            r"newest: run TWO: runner settings differ "
                                            r"\(threads 2 vs 1"):
        resolve_baseline(only, "main", exclude_run_id="CAND")
