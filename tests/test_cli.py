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


GOOD_PROFILE = """
name = "p"
marker = "p"
platform = "android"
[match]
soc_model = ["SM6450"]
[run]
threads = 4
"""


@pytest.mark.parametrize("table, expected", [
    ("[power]\nsustained_duration_s = -5\n", "power.sustained_duration_s"),
    ("[power]\nno_such_key = 1\n", "power.no_such_key"),
    ("[quality]\ncolour_de_max = \"high\"\n", "[quality]: key 'colour_de_max'"),
    ("[quality]\nno_such_score = 1.0\n", "unknown quality key 'no_such_score'"),
    ("[regression]\nthreshold = 2\n", "regression.threshold"),
    ("[virtual]\nabi = \"mips\"\n", "key 'virtual.abi'"),
    ("[virtual]\nabi = \"x86_64\"\nbogus = 1\n", "virtual.bogus"),
])
def test_profiles_check_validates_every_table(tmp_path, capsys, table, expected):
    """A table a run would refuse makes `swaplab profiles check` fail, naming file and key."""
    (tmp_path / "p.toml").write_text(GOOD_PROFILE + table)
    assert main(["profiles", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "p.toml" in err and expected in err, err


def test_profiles_check_accepts_valid_tables(tmp_path, capsys):
    (tmp_path / "p.toml").write_text(GOOD_PROFILE + "[power]\nsustained_duration_s = 30\n"
                                     "[quality]\ncolour_de_max = 4.0\n"
                                     "[virtual]\nabi = \"arm64-v8a\"\n")
    assert main(["profiles", "check", str(tmp_path)]) == 0, capsys.readouterr().err
