"""harness.session.LabSession: profiles at start-up, device assignment, artifact folders
named safely after untrusted names, and a comparison that fails without losing the run."""

from __future__ import annotations

import pytest
from helpers.paths import REPO

from harness.devices import DiscoveryOptions
from harness.history.compare import Comparison
from harness.profiles import ProfileError
from harness.record.run_record import load_record
from harness.session import LabSession


def _session(tmp_path, **kw) -> LabSession:
    return LabSession(profiles_dir=REPO / "device_profiles", models_dir=REPO / "models",
                      out_root=tmp_path / "out", progress=lambda _m: None,
                      discovery=DiscoveryOptions(backends=["local"],
                                                 work_root=str(tmp_path / "work")), **kw)


def test_bad_profile_fails_at_start(tmp_path):
    (tmp_path / "x.toml").write_text('name = "x"\n')
    with pytest.raises(ProfileError, match="x.toml"):
        LabSession(profiles_dir=tmp_path, models_dir=REPO / "models", out_root=tmp_path)


def test_this_host_gets_the_host_profile(tmp_path):
    lab = _session(tmp_path)
    [a] = lab.assignments()
    assert a.device.serial == "local" and a.profile is not None and a.profile.name == "host"
    assert lab.assignment("local") is a


def test_artifacts_dir_is_named_safely(tmp_path):
    lab = _session(tmp_path)
    d = lab.artifacts_dir("../../evil serial", "suites/t.py::test_x[../../a b]")
    run_dir = lab.record.run_dir.resolve()
    assert d.resolve().is_relative_to(run_dir / "artifacts") and d.is_dir()
    assert ".." not in d.relative_to(run_dir).parts


def test_a_failed_comparison_keeps_the_run(tmp_path, monkeypatch):
    lab = _session(tmp_path, baseline="main")
    assert lab.record.run_dir.is_dir()  # the run exists

    def broken(*_a, **_kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr("harness.session.finish_run", broken)
    comp = lab.compare_with_baseline()
    assert isinstance(comp, Comparison) and comp.exit_status == 0
    assert "disk full" in comp.error and comp.baseline_spec == "main"
    saved = load_record(lab.record.run_dir)["comparison"]
    assert saved == comp.as_record() and saved["gate"]["exit_status"] == 0
