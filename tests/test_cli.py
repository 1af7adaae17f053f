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


def test_virtual_device_start_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["virtual-device", "start", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "swaplab virtual-device start" in out and "--profile" in out and "--fault" in out


def test_virtual_device_bad_profile(capsys):
    assert main(["virtual-device", "start", "--profile", "no-such-profile"]) == 2
    assert "no device profile 'no-such-profile'" in capsys.readouterr().err


def test_devices_lists_a_running_virtual_device(tmp_path, capsys, monkeypatch):
    from harness.virtual_device.testing import AdbLab, find_adb

    if find_adb() is None:
        pytest.skip("no adb binary")
    monkeypatch.setenv("SWAPLAB_BACKENDS", "local,android")
    monkeypatch.delenv("SWAPLAB_ADB_SERVERS", raising=False)
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device("snapdragon6")
        assert main(["devices", "--adb-port", str(lab.port), "--no-local-device"]) == 0
        out = capsys.readouterr().out
        rows = [line.split("\t") for line in out.splitlines()]
        assert [r[0] for r in rows] == [vd.serial], out
        assert rows[0][1] == "virtual" and rows[0][3] == "x86_64"
        assert rows[0][4].startswith("snapdragon6 (marker snapdragon6")
        # the same server named as a remote adb server
        assert main(["devices", "--adb-server", f"127.0.0.1:{lab.port}",
                     "--adb-port", str(lab.port), "--no-local-device"]) == 0
        assert capsys.readouterr().out.startswith(f"{vd.serial}\tvirtual\t")
