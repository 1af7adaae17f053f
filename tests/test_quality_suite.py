"""suites/test_quality.py end to end with a stand-in runner whose output frames are the
Python reference blend (good, or with one defect): records, verdicts, report images,
golden check and the failure message."""

from __future__ import annotations

import json

import pytest
from helpers.lab import REPO, run_pytest_subprocess, write_fake_runner

pytest.importorskip("ncnn")
# the suite asserts the identity margin, which the thresholds promise for the embedding
pytest.importorskip("dlib")
pytestmark = pytest.mark.usefixtures("local_only")

FAKE_RUNNER_BODY = r'''
sys.path.insert(0, REPO)
target = a.target
if os.path.isdir(target):
    target = os.path.join(target, sorted(os.listdir(target))[0])
output = None
if a.out and a.save_every:
    import cv2
    from harness.quality import synthetic
    from harness.quality.golden import load_rgb
    from harness.quality.landmarks import reference_landmarks
    src, tgt = load_rgb(a.source), load_rgb(target)
    inp = synthetic.SwapInputs(src, tgt, reference_landmarks(src), reference_landmarks(tgt))
    defect = os.environ.get("FAKE_DEFECT", "good")
    blend = synthetic.good_blend(inp) if defect == "good" else synthetic.broken_blend(inp, defect)
    output = cv2.cvtColor(blend.output, cv2.COLOR_RGB2BGR)
S = ["decode", "enhance", "detect", "landmarks", "align", "warp", "color", "mask", "blend"]
for i in range(a.warmup + a.frames):
    st = {s: 1000000 for s in S}
    st["total"] = sum(st.values())
    print(json.dumps({"type": "frame", "schema": "swaplab.telemetry/1", "index": i,
                      "warmup": i < a.warmup, "source_frame": 0, "faces": 1,
                      "mode": a.mode, "enhanced": False, "detected": True,
                      "stage_ns": st, "de_before": 7.1, "de_after": 3.2,
                      "tone_compensated": True, "rss_kb": 40000, "temp_c": None}))
    if output is not None and i % a.save_every == 0:
        os.makedirs(a.out, exist_ok=True)
        cv2.imwrite(os.path.join(a.out, "out_%d.jpg" % i), output,
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
print_summary()
'''

PLUGIN = '''
from pathlib import Path
import harness.runner.invoke
import harness.quality.golden as golden
harness.runner.invoke.build_runner = lambda abi, progress=print, **kw: Path({runner!r})
golden.GOLDEN_DIR = Path({golden!r})
import suites_test_quality_patch  # noqa
'''

# the suite imported GOLDEN_DIR/golden_path by value: point its golden_path at tmp too
PATCH = '''
import harness.quality as q
import harness.quality.golden as golden
from pathlib import Path
_orig = golden.golden_path
def golden_path(mode, s, t, root=None):
    return _orig(mode, s, t, root=Path({golden!r}))
q.golden_path = golden_path
q.GOLDEN_DIR = Path({golden!r})
'''


def run_suite(tmp_path, fast_profiles, defect="good", update_golden=False):
    runner = write_fake_runner(tmp_path / "swap_runner",
                               FAKE_RUNNER_BODY.replace("REPO", repr(str(REPO))))
    golden = tmp_path / "golden"
    (tmp_path / "fake_build.py").write_text(PLUGIN.format(runner=str(runner), golden=str(golden)))
    (tmp_path / "suites_test_quality_patch.py").write_text(PATCH.format(golden=str(golden)))
    out = tmp_path / f"out-{defect}"
    env = {"PYTHONPATH": str(tmp_path), "SWAPLAB_CACHE": str(tmp_path / "cache"),
           "FAKE_DEFECT": defect}
    if update_golden:
        env["SWAPLAB_UPDATE_GOLDEN"] = "1"
    r = run_pytest_subprocess([str(REPO / "suites" / "test_quality.py"), "-p", "fake_build",
                               "--profiles-dir", str(fast_profiles), "--lab-out", str(out),
                               "-v", "-W", "default"],
                              cwd=tmp_path, timeout=900, env=env)
    record = json.loads((out / "latest" / "record.json").read_text())
    return r, record, out / "latest", golden


def test_quality_suite_good_blend_records_and_passes(tmp_path, fast_profiles):
    r, record, run_dir, golden = run_suite(tmp_path, fast_profiles, update_golden=True)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-3000:]
    outcomes = {t["nodeid"].split("::")[-1]: t["outcome"] for t in record["tests"]}
    assert outcomes == {"test_blend_quality[local-forward]": "passed",
                        "test_blend_quality[local-reverse]": "passed"}
    metrics = {(m["metric"], m["extra"]["variant"].split(":")[0]) for m in record["measurements"]}
    for metric in ("quality_de_ciede2000", "quality_seam_ratio", "quality_pose_nme",
                   "quality_background_ssim", "quality_background_psnr_db",
                   "quality_identity_margin", "quality_golden_ssim", "quality_golden_de_p95",
                   "quality_golden_changed_ratio", "quality_face_colour_de",
                   "quality_doubled_brows", "quality_leak_ratio", "quality_pose_points_nme"):
        for direction in ("forward", "reverse"):
            assert (metric, direction) in metrics, (metric, direction)
    m = next(m for m in record["measurements"] if m["metric"] == "quality_pose_nme")
    assert m["direction"] == "lower" and m["extra"]["threshold"]["verdict"] == "pass"
    assert len(m["samples"]) == 2
    # grace_hopper wears glasses: the direction where she is the source scores her rims
    cut = [m for m in record["measurements"] if m["metric"] == "quality_cut_glasses"]
    assert [m["extra"]["threshold"]["verdict"] for m in cut if m["samples"]] == ["pass"], cut
    m = next(m for m in record["measurements"] if m["metric"] == "quality_face_colour_de")
    assert m["extra"]["threshold"] == {"key": "face_colour_de_max", "value": 6.0,
                                       "statistic": "worst frame", "verdict": "pass"}
    # goldens written, report images present
    assert sorted(p.name for p in golden.rglob("*.jpg")) == [
        "astronaut__grace_hopper.jpg", "grace_hopper__astronaut.jpg"]
    panels = [a for a in record["artifacts"] if a["kind"] == "quality_image"
              and a.get("role") == "panel"]
    assert len(panels) == 2
    for a in record["artifacts"]:
        if a["kind"] == "quality_image":
            assert (run_dir / a["path"]).is_file(), a


def test_quality_suite_flags_a_hard_seam(tmp_path, fast_profiles):
    r, record, _, _ = run_suite(tmp_path, fast_profiles, defect="hard_mask")
    assert r.returncode != 0
    outcomes = {t["nodeid"].split("::")[-1]: t["outcome"] for t in record["tests"]}
    assert set(outcomes.values()) == {"failed"}
    msgs = " ".join(t.get("message", "") for t in record["tests"])
    assert "quality_seam_ratio" in msgs and "threshold <=" in msgs and "'local'" in msgs
