"""The plugin: device parametrization, profile markers, the found-devices message,
--device selection, strict markers. No runner needed (tests use `device`/`recorder`)."""

import json

import pytest

pytestmark = pytest.mark.usefixtures("local_only")

SUITE = """
def test_bound(device, recorder):
    recorder.measure("latency_total_ms", [1.0, 2.0, 3.0])
    assert device.serial == "local"

def test_profile(profile):
    assert profile.name == "host"

def test_unbound():
    pass
"""


@pytest.fixture
def suite(pytester, tmp_path):
    pytester.makepyfile(test_suite=SUITE)
    return ["--lab-out", str(tmp_path / "out"), "-p", "no:cacheprovider", "--strict-markers"]


def test_device_bound_tests_are_parametrized_and_marked(pytester, suite):
    result = pytester.runpytest("--collect-only", "-q", *suite)
    result.stdout.fnmatch_lines(["*test_bound[[]local[]]", "*test_profile[[]local[]]",
                                 "*test_unbound"])
    assert result.ret == 0


def test_marker_host_selects_device_tests(pytester, suite, tmp_path):
    result = pytester.runpytest("-m", "host", "-v", *suite)
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(["*SwapLab report: *index.html"])
    runs = list((tmp_path / "out" / "runs").iterdir())
    assert len(runs) == 1
    record = json.loads((runs[0] / "record.json").read_text())
    assert record["status"] == "finished"
    assert record["devices"]["local"]["profile"] == "host"
    assert [m["metric"] for m in record["measurements"]] == ["latency_total_ms"]
    assert record["measurements"][0]["target"]["key"] == "latency_p95_ms"
    assert {t["outcome"] for t in record["tests"]} == {"passed"}
    assert (tmp_path / "out" / "latest").resolve() == runs[0].resolve()
    assert (runs[0] / "benchmarks.json").is_file()


def test_marker_without_device_says_what_was_found(pytester, suite, tmp_path):
    result = pytester.runpytest("-m", "snapdragon6", *suite)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines([
        "*marker 'snapdragon6' (profile snapdragon6*matches no connected device*",
        "*Devices found and their profiles:*",
        "*local [[]local, *[]] -> profile host (marker host*",
    ])
    assert not (tmp_path / "out").exists(), "no run folder when nothing ran"


def test_not_device_marker_runs_only_unbound(pytester, suite):
    result = pytester.runpytest("-m", "not swaplab_device", *suite)
    result.assert_outcomes(passed=1, deselected=2)


def test_device_option(pytester, suite):
    result = pytester.runpytest("--device", "local", "-q", *suite)
    result.assert_outcomes(passed=3)
    result = pytester.runpytest("--device", "no-such-phone", *suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--device 'no-such-phone': no such device*local*profile host*"])


def test_no_local_device_leaves_empty_parameter_set(pytester, suite):
    result = pytester.runpytest("--no-local-device", "-rs", *suite)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("skipped") == 2


def test_markers_registered(pytester):
    result = pytester.runpytest("--markers")
    for marker in ("host", "snapdragon6", "snapdragon865", "snapdragon8gen2", "iphone15pro",
                   "swaplab_device"):
        result.stdout.fnmatch_lines([f"@pytest.mark.{marker}:*"])


def test_failed_target_message_names_device_metric_value_target(pytester, tmp_path):
    pytester.makepyfile(test_t="""
        def test_slow(recorder):
            recorder.measure("latency_total_ms", [500.0, 600.0, 700.0])
            recorder.assert_targets()
    """)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "host.toml").write_text(
        'name = "host"\nmarker = "host"\nplatform = "linux"\n[match]\nkind = ["local"]\n'
        '[targets]\nlatency_p95_ms = 120.0\n[run]\nthreads = 1\n')
    result = pytester.runpytest("--profiles-dir", str(profiles), "--lab-out",
                                str(tmp_path / "out"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*target missed:*", ("*device 'local'*profile host: "
                                 "latency_total_ms p95 = 690.0 ms, target latency_p95_ms <= "
                                 "120.0 ms*")])
    record = json.loads(next((tmp_path / "out" / "runs").iterdir()).joinpath(
        "record.json").read_text())
    assert record["measurements"][0]["target"]["verdict"] == "fail"
    assert record["tests"][0]["outcome"] == "failed"


def test_tests_carry_the_profile_marker_not_its_name(pytester, tmp_path):
    """A profile whose name differs from its marker: `-m <marker>` selects its tests and
    the name is no marker at all (--strict-markers would reject it)."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "this_host.toml").write_text(
        'name = "this-host"\nmarker = "bench_box"\nplatform = "linux"\n'
        '[match]\nkind = ["local"]\n[run]\nthreads = 1\n')
    pytester.makepyfile(test_suite="""
def test_bound(device, profile):
    assert profile.name == "this-host" and profile.marker == "bench_box"

def test_unbound():
    pass
""")
    args = ["--profiles-dir", str(profiles), "--lab-out", str(tmp_path / "out"),
            "-p", "no:cacheprovider", "--strict-markers"]
    result = pytester.runpytest("-m", "bench_box", "-v", *args)
    result.stdout.fnmatch_lines(["*test_bound[[]local[]] PASSED*"])
    assert result.ret == 0
    result = pytester.runpytest("--collect-only", "-q", "-m", "not bench_box", *args)
    result.stdout.fnmatch_lines(["*test_unbound*"])
    assert "test_bound" not in result.stdout.str()
