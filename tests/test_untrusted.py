"""Strings and paths from outside (device names and properties, run records on disk, the
model manifest) never reach a terminal raw, never become a link out of the run folder, and
a bad file gets an error that names it."""

import json
import os
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.record.run_record import RunRecord
from harness.report import write_reports
from harness.terminal import printable

REPO = Path(__file__).resolve().parents[1]
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\x9b\u202eevil"


def test_printable_escapes_every_control_character():
    out = printable(ESCAPES + "\t\n")
    assert out == ("\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\x0d\\x9b\\u202eevil\\x09\\x0a")
    assert printable("a\nb\r", keep_newlines=True) == "a\nb\\x0d"
    assert printable("SwapLab Virtual SD6 · ünïcode") == "SwapLab Virtual SD6 · ünïcode"
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", printable("".join(map(chr, range(256)))))


def _hostile_profile(tmp_path: Path) -> Path:
    text = (REPO / "device_profiles" / "snapdragon6.toml").read_text()
    text = text.replace('"ro.product.model" = "SwapLab Virtual SD6"',
                        '"ro.product.model" = "SD6 \\u001b]0;pwned\\u0007\\u001b[2J\\t\\r"')
    assert "\\u001b" in text
    p = tmp_path / "snapdragon6.toml"
    p.write_text(text)
    return p


@pytest.mark.usefixtures("local_only")
def test_devices_and_found_devices_text_strip_terminal_escapes(tmp_path, capsys, monkeypatch):
    from harness.devices import DiscoveryOptions
    from harness.session import LabSession
    from harness.virtual_device.testing import AdbLab, find_adb

    if find_adb() is None:
        pytest.skip("no adb binary")
    monkeypatch.setenv("SWAPLAB_BACKENDS", "local,android")
    monkeypatch.delenv("SWAPLAB_ADB_SERVERS", raising=False)
    profile = _hostile_profile(tmp_path)
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device(str(profile))
        assert main(["devices", "--adb-port", str(lab.port), "--no-local-device",
                     "--profiles-dir", str(profile.parent)]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out
        row = out.splitlines()[0].split("\t")
        assert len(row) == 5  # a tab in the name cannot forge a column
        assert row[0] == vd.serial and row[2].startswith("SD6 \\x1b]0;pwned\\x07\\x1b[2J\\x09")
        lab_session = LabSession(profiles_dir=profile.parent, models_dir=REPO / "models",
                                 out_root=tmp_path / "out",
                                 discovery=DiscoveryOptions(adb_port=lab.port,
                                                            include_local=False))
        text = lab_session.found_devices_text()
        assert vd.serial in text and "\\x1b]0;pwned" in text and "\x1b" not in text


def _record_with_artifacts(tmp_path: Path, paths: list[str]) -> Path:
    rec = RunRecord.create(tmp_path, {"host": {"hostname": "h"}})
    for rel in paths:
        rec._change("add_artifact", artifact={"device": "local", "test": "t::test_latency",
                                              "kind": "telemetry", "path": rel})
        rec._change("add_artifact", artifact={"device": "local", "test": "t::test_latency",
                                              "kind": "output_frame", "path": rel})
        rec._change("add_artifact", artifact={"device": "local", "test": "t::q",
                                              "kind": "quality_image", "role": "diff",
                                              "path": rel})
    rec.add_device("local", {"kind": "local", "serial": "local", "name": "h", "abi": "x86_64"})
    rec.finish()
    return rec.run_dir


def test_crafted_artifact_paths_never_become_links(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    run_dir_guess = tmp_path / "runs"
    hostile = ["javascript:alert(1)", "../../etc/passwd", "/etc/passwd", str(outside),
               "data:text/html,<script>alert(1)</script>", "link-out.txt", "ok/frame.jpg",
               "//evil.example/x.jpg"]
    run_dir = _record_with_artifacts(tmp_path, hostile)
    assert run_dir.parent == run_dir_guess
    # files that exist inside the run folder under hostile names, and a symlink out of it
    (run_dir / "javascript:alert(1)").write_text("x")
    (run_dir / "ok").mkdir()
    (run_dir / "ok" / "frame.jpg").write_bytes(b"\xff\xd8\xff")
    os.symlink(outside, run_dir / "link-out.txt")
    html = write_reports(run_dir).read_text()
    refs = re.findall(r'(?:href|src)="([^"]*)"', html)
    assert "ok/frame.jpg" in refs  # a plain artifact still links
    assert "javascript%3Aalert%281%29" in refs  # a file of that name, never a scheme
    for ref in refs:
        assert not ref.lower().startswith(("javascript:", "data:", "/", "..")), ref
        assert "etc/passwd" not in ref and "secret" not in ref and "link-out" not in ref


def test_invalid_manifest_names_the_file(tmp_path):
    from harness.modelpack.pack import ModelPackError, load_pack

    good = json.loads((REPO / "models" / "manifest.json").read_text())
    cases = {
        "not-json": "{",
        "deep": "[" * 100_000,
        "model-is-a-list": json.dumps({**good, "models": {"m": []}}),
        "mode-is-a-string": json.dumps({**good, "modes": {**good["modes"], "small": "x"}}),
        "bad-every-n": json.dumps({**good, "modes": {
            **good["modes"], "small": {**good["modes"]["small"],
                                       "detect_every_n_frames": "often"}}}),
        "not-utf8": b"\xff\xfe{}",
    }
    for name, content in cases.items():
        root = tmp_path / name
        root.mkdir()
        target = root / "manifest.json"
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(ModelPackError) as e:
            load_pack(root, verify=False)
        assert str(e.value).startswith(f"{target}: "), (name, str(e.value))


def test_compare_lines_from_crafted_records_reach_the_terminal_escaped(tmp_path, capsys):
    from helpers.records import make_run, seed_history

    lab = tmp_path / "lab"
    runs = [make_run(lab, seed=1, evil=False), make_run(lab, scale=1.2, seed=3, evil=False)]
    for run in runs:  # a record edited on disk: the device serial carries escapes
        for name, sep in (("record.json", ": "), ("record.journal", ":")):
            p = run / name
            p.write_text(p.read_text().replace(f'"device"{sep}"local"',
                                               f'"device"{sep}"lo\\u001b]0;pwned\\u0007cal"'))
    seed_history(lab / "history.sqlite", runs[0])  # the history a "regressed" needs
    assert main(["compare", str(runs[0]), str(runs[1]), "--lab-out", str(lab)]) == 1
    captured = capsys.readouterr()
    assert "lo\\x1b]0;pwned\\x07cal" in captured.out
    assert "\x1b" not in captured.out + captured.err and "\x07" not in captured.out
    assert main(["report", "no\x1b[2Jsuch-run", "--lab-out", str(lab)]) == 1
    err = capsys.readouterr().err
    assert "no\\x1b[2Jsuch-run" in err and "\x1b" not in err


def test_progress_lines_are_made_printable(capsys):
    """The plugin's progress writer (every "[swaplab] SERIAL: ..." line) escapes control
    characters; newlines between lines of one message stay."""
    from types import SimpleNamespace

    from harness.plugin import _writer

    config = SimpleNamespace(pluginmanager=SimpleNamespace(getplugin=lambda _name: None))
    _writer(config)(f"[swaplab] evil{ESCAPES}: syncing\nsecond line")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x9b" not in out
    assert "evil\\x1b]0;pwned" in out and out.endswith("syncing\nsecond line\n")
