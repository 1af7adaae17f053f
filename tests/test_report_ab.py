"""A/B interleaved mode on this host: --ab-runner alternates a baseline runner build with
this one in ABBA rounds; measurements carry extra["ab"]; the session compares the arms."""

import json

import pytest
from helpers.git import git
from helpers.lab import REPO, run_pytest_subprocess

from harness.runner.ab import resolve_baseline_runner
from harness.runner.invoke import RunnerError
from harness.runner.telemetry import STAGES


def test_ab_interleaved_run(tmp_path, fast_profiles):
    # The baseline is the git ref HEAD: its runner/ is exported and built by its own
    # build.py; in a clean checkout that is this build (a cache hit), so A and B are alike.
    # the round count comes from the profile's [run] ab_rounds (no --ab-rounds given)
    host = fast_profiles / "host.toml"
    host.write_text(host.read_text().replace("[run]\n", "[run]\nab_rounds = 8\n"))
    out = tmp_path / "out"
    r = run_pytest_subprocess(
        [str(REPO / "suites" / "test_ab.py"), "--profiles-dir", str(fast_profiles),
         "--lab-out", str(out), "--ab-runner", "HEAD",
         "--ab-frames", "3", "-p", "no:randomly"], cwd=tmp_path,
        env={"SWAPLAB_BACKENDS": "local"})
    record = json.loads(((out / "latest").resolve() / "record.json").read_text())
    comp = record["comparison"]
    regressed = comp["gate"]["exit_status"] == 1
    assert r.returncode == (1 if regressed else 0), r.stdout[-3000:] + r.stderr[-2000:]
    assert "SwapLab gate (A/B interleaved)" in r.stdout
    ms = [m for m in record["measurements"] if (m.get("extra") or {}).get("ab")]
    assert len(ms) == 16 * len(STAGES)  # 8 rounds x 2 arms, end to end and every stage
    totals = [m for m in ms if m["metric"] == "latency_total_ms"]
    rounds = [(m["extra"]["ab"]["round"], m["extra"]["ab"]["arm"]) for m in totals]
    assert rounds[:4] == [(0, "baseline"), (0, "candidate"), (1, "candidate"), (1, "baseline")]
    assert "A/B baseline: building swap_runner of HEAD" in r.stdout
    assert comp["ab"] is True
    assert sorted(r["metric"] for r in comp["rows"]) == sorted(f"latency_{s}_ms" for s in STAGES)
    row = next(r for r in comp["rows"] if r["metric"] == "latency_total_ms")
    assert row["baseline_run"].endswith(":baseline")
    assert row["verdict"] in ("same", "unknown", "improved", "regressed")
    html = ((out / "latest").resolve() / "index.html").read_text()
    assert "A/B interleaved" in html and 'class="chart overlay"' in html
    # A/B quality: both builds' swaps scored per arm and shown side by side in the report
    q = [m for m in record["measurements"] if (m.get("extra") or {}).get("ab_quality")]
    arms = {(m["extra"]["variant"].split(":")[0], m["extra"]["ab_quality"]["arm"]) for m in q}
    assert arms == {(d, a) for d in ("forward", "reverse") for a in ("baseline", "candidate")}
    assert {"quality_face_colour_de", "quality_pose_points_nme"} <= {m["metric"] for m in q}
    panels = [a for a in record["artifacts"]
              if a.get("kind") == "quality_image" and a.get("role") == "panel"
              and "A/B" in (a.get("variant") or "")]
    assert len(panels) == 2, record["artifacts"]
    for a in panels:
        assert ((out / "latest").resolve() / a["path"]).stat().st_size > 10_000
        assert a["path"] in html, a["path"]


def test_ab_suite_skips_without_option(tmp_path, fast_profiles):
    r = run_pytest_subprocess(
        [str(REPO / "suites" / "test_ab.py"), "--profiles-dir", str(fast_profiles),
         "--lab-out", str(tmp_path / "out"), "-rs"], cwd=tmp_path,
        env={"SWAPLAB_BACKENDS": "local"})
    assert r.returncode == 0 and "needs --ab-runner" in r.stdout, r.stdout[-2000:]




def _repo_with_runner(tmp_path, build_py: str):
    """A git repo whose runner/build.py is `build_py` (a stand-in for the real build, so
    these tests check the export-and-build plumbing, not the C++ build)."""
    repo = tmp_path / "repo"
    (repo / "runner").mkdir(parents=True)
    (repo / "runner" / "build.py").write_text(build_py)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "r")
    return repo


def test_baseline_runner_from_git_ref_is_built_by_the_refs_build_py(tmp_path):
    made = tmp_path / "built" / "swap_runner"
    repo = _repo_with_runner(tmp_path, (
        "import pathlib, sys\n"
        "assert sys.argv[1:] == ['--abi', 'arm64-v8a'], sys.argv\n"
        f"p = pathlib.Path({str(made)!r}); p.parent.mkdir(parents=True, exist_ok=True)\n"
        "p.write_text(pathlib.Path(__file__).read_text())\n"
        "print('building', file=sys.stderr); print(p)\n"))
    assert resolve_baseline_runner("main", "arm64-v8a", repo=repo, progress=lambda m: None) == made
    assert "--abi" in made.read_text()  # the ref's own build.py ran


def test_baseline_runner_for_android_devices_is_the_android_build(tmp_path):
    made = tmp_path / "built" / "swap_runner"
    repo = _repo_with_runner(tmp_path, (
        "import pathlib, sys\n"
        "assert sys.argv[1:] == ['--abi', 'x86_64', '--platform', 'android'], sys.argv\n"
        f"p = pathlib.Path({str(made)!r}); p.parent.mkdir(parents=True, exist_ok=True)\n"
        "p.write_text('built'); print(p)\n"))
    assert resolve_baseline_runner("main", "x86_64", repo=repo, progress=lambda m: None,
                                   platform="android") == made


def test_baseline_runner_errors_name_the_spec(tmp_path):
    repo = _repo_with_runner(tmp_path, "import sys\nprint('cmake failed: no g++', file=sys.stderr)\n"
                                       "sys.exit(1)\n")
    with pytest.raises(RunnerError, match=r"'no-such-ref'.*neither a file nor a git ref"):
        resolve_baseline_runner("no-such-ref", "x86_64", repo=repo, progress=lambda m: None)
    with pytest.raises(RunnerError, match=r"'--output=/tmp/x'.*neither a file nor a git ref"):
        resolve_baseline_runner("--output=/tmp/x", "x86_64", repo=repo, progress=lambda m: None)
    with pytest.raises(RunnerError, match=r"'main'.*failed: cmake failed: no g\+\+"):
        resolve_baseline_runner("main", "x86_64", repo=repo, progress=lambda m: None)
    binary = tmp_path / "my_runner"
    binary.write_bytes(b"\x7fELF")
    assert resolve_baseline_runner(str(binary), "x86_64", repo=repo) == binary
