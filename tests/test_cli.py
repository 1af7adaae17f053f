"""The `swaplab` console script."""

import pytest

from harness.cli import main

pytestmark = pytest.mark.usefixtures("local_only")


def test_profiles_check(capsys):
    assert main(["profiles", "check"]) == 0
    out = capsys.readouterr().out
    assert "snapdragon6\tmarker=snapdragon6" in out and "profiles OK" in out


def test_profiles_check_reports_bad_file(tmp_path, capsys):
    (tmp_path / "x.toml").write_text('name = "x"\nmarker = 3\n')
    assert main(["profiles", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "x.toml: key 'marker': expected string, got integer 3" in err


def test_devices_lists_local(capsys):
    assert main(["devices"]) == 0
    assert capsys.readouterr().out.startswith("local\tlocal\t")


def test_report_needs_a_record(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "record.json not found" in capsys.readouterr().err


def test_usage_error():
    with pytest.raises(SystemExit):
        main(["frobnicate"])
