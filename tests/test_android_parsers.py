"""Android parsers on recorded real outputs (tests/fixtures/android/SOURCES.md) and fuzzed
with hypothesis: garbage never crashes, it yields Unknown with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.devices.android import parsers as P
from harness.devices.android.sampler import parse_samples, sampler_script, summarise

FIX = Path(__file__).parent / "fixtures" / "android"


def fixture(name: str) -> str:
    return (FIX / name).read_text()


def test_every_fixture_has_a_source():
    sources = (FIX / "SOURCES.md").read_text()
    for f in FIX.glob("*.txt"):
        assert f.name in sources, f"{f.name} has no SOURCE note"


# --- recorded outputs -------------------------------------------------------------------
def test_thermalservice_samsung_a52():
    ts = P.parse_thermalservice(fixture("thermalservice_samsung_a52_android12.txt"))
    assert ts.status == 0 and ts.status_name == "NONE" and ts.hal_ready is True
    assert ts.temperatures["AP"] == 25.6 and ts.temperatures["BAT"] == 23.8
    assert len(ts.temperatures) == 9


def test_thermalservice_hal_not_ready_is_unknown():
    ts = P.parse_thermalservice(fixture("thermalservice_hal_not_ready.txt"))
    assert isinstance(ts.status, P.Unknown) and "HAL Ready: false" in ts.status.reason
    assert ts.status_name == "UNKNOWN" and ts.hal_ready is False and ts.temperatures == {}


def test_dumpsys_battery_samsung_charging_on_usb():
    b = P.parse_dumpsys_battery(fixture("dumpsys_battery_samsung_usb_charging.txt"))
    assert b.level_pct == 84 and b.charging is True and b.plugged == ("USB",)
    assert b.status == 2 and b.voltage_v == pytest.approx(4.063)
    assert b.temperature_c == pytest.approx(32.6)


def test_dumpsys_battery_console_garbage_values():
    b = P.parse_dumpsys_battery(fixture("dumpsys_battery_console_not_charging.txt"))
    assert b.level_pct == 90 and b.charging is False and b.status == 4
    assert b.voltage_v is None           # "voltage: 13" is not a battery voltage
    assert b.temperature_c == pytest.approx(2.6)


def test_uevent_pixel3a_small_current_is_microamps():
    u = P.parse_power_supply_uevent(fixture("battery_uevent_pixel3a_usb_not_charging.txt"))
    b = P.battery_from_sysfs(u)
    assert b["status"] == "Not charging"
    assert b["current_ua"] == 976 and b["unit_seen"] == "uA"   # not 976 mA
    assert b["voltage_v"] == pytest.approx(3.815175) and b["level_pct"] == 44
    assert b["temp_c"] == pytest.approx(31.3)


def test_uevent_mi8_inverted_sign_is_corrected():
    u = P.parse_power_supply_uevent(fixture("battery_uevent_mi8_charging_sign_inverted.txt"))
    b = P.battery_from_sysfs(u)
    assert b["status"] == "Charging"
    assert b["current_ua"] == 326171 and b["sign_inverted"] is True  # charging is positive


def test_getprop_nexus5_falls_back_to_board_platform():
    props = P.parse_getprop(fixture("getprop_nexus5_hammerhead_excerpt.txt"))
    assert props["ro.build.date"] == "Tue Jan  6 22:40:00 UTC 2015"
    assert P.soc_of(props) == ("msm8974", "ro.board.platform")


# --- unit rules ---------------------------------------------------------------------------
def test_getprop_soc_model_wins_and_garbage_lines():
    text = "garbage\n[ro.board.platform]: [kalama]\r\n[ro.soc.model]: [SM8550]\n[x]: [multi\nline]\n"
    props = P.parse_getprop(text)
    assert P.soc_of(props) == ("SM8550", "ro.soc.model")
    assert props["x"] == "multi\nline"
    assert P.soc_of({}) == (None, "no ro.soc.model / ro.board.platform")


@pytest.mark.parametrize("raw,expected", [
    ("45000", 45.0), ("-5000", -5.0), ("450", 45.0), ("45", 45.0), ("38500\n", 38.5),
])
def test_thermal_temp_units(raw, expected):
    assert P.parse_thermal_temp(raw) == pytest.approx(expected)


@pytest.mark.parametrize("raw", ["", "abc", "999999999", "cat: temp: Permission denied", "1e3"])
def test_thermal_temp_unknown(raw):
    v = P.parse_thermal_temp(raw)
    assert isinstance(v, P.Unknown) and v.reason and not v


def test_thermal_temp_explicit_unit():
    assert P.parse_thermal_temp("150", unit="deci") == 15.0
    assert isinstance(P.parse_thermal_temp("5", unit="kelvin"), P.Unknown)


@pytest.mark.parametrize("raw,status,unit,expected,inverted", [
    ("-450000", "Discharging", None, -450000, False),    # kernel rule
    ("450000", "Discharging", None, -450000, True),      # vendor inverted sign
    ("-450", "Discharging", "mA", -450000, False),       # Samsung-style mA
    ("450", "Discharging", None, -450000, True),         # mA and inverted
    ("1200000", "Charging", None, 1200000, False),
])
def test_battery_current(raw, status, unit, expected, inverted):
    c = P.parse_battery_current(raw, status=status, unit=unit)
    assert c.ua == expected and c.sign_inverted is inverted


def test_battery_voltage_units():
    assert P.parse_battery_voltage("3850000") == pytest.approx(3.85)
    assert P.parse_battery_voltage("3850") == pytest.approx(3.85)
    assert isinstance(P.parse_battery_voltage("13"), P.Unknown)


def test_infer_current_unit_per_run():
    assert P.infer_current_unit(["-300", "-1500"], "Discharging") == "mA"
    assert P.infer_current_unit(["-3000", "-450000"], "Discharging") == "uA"
    assert P.infer_current_unit(["976"], "Not charging") == "uA"


def test_cpu_lists_and_clusters():
    assert P.parse_cpu_list("0-3,5") == [0, 1, 2, 3, 5]
    assert P.parse_cpu_list("4 5 6") == [4, 5, 6]
    assert isinstance(P.parse_cpu_list("3-1"), P.Unknown)
    assert P.cpu_mask([4, 5, 6, 7]) == "f0"
    # Snapdragon 7+ Gen 2 layout (4 x 1.80 + 3 x 2.50 + 1 x 2.92 GHz, per
    # https://github.com/Dr-Noob/cpufetch/issues/253)
    related = {c: "0 1 2 3" for c in range(4)} | {c: "4 5 6" for c in (4, 5, 6)} | {7: "7"}
    maxf = {c: "1804800" for c in range(4)} | {c: "2496000" for c in (4, 5, 6)} | {7: "2918400"}
    cl = P.parse_clusters(related, maxf)
    assert [c["cpus"] for c in cl] == [[0, 1, 2, 3], [4, 5, 6], [7]]
    assert cl[-1]["max_khz"] == 2918400
    assert isinstance(P.parse_clusters({}), P.Unknown)


def test_vmhwm():
    assert P.parse_vmhwm("Name:\tswap_runner\nVmPeak:\t 1000 kB\nVmHWM:\t   51234 kB\n") == 51234
    assert isinstance(P.parse_vmhwm("Name: x\n"), P.Unknown)


def test_sampler_output_roundtrip():
    text = "\n".join([  # noqa: FLY002
        "T 100.5", "Z 0 cpu-0-0 45000", "Z 1 battery 30000", "Z 2 skin cat: x: Is a directory",
        "B current_now 300000", "B voltage_now 4000000", "B capacity 77", "B status Discharging",
        "F 0 1804800", "F 4 junk", "M VmHWM:\t 1234 kB",
        "T 101.0", "Z 0 cpu-0-0 46000", "B current_now 310000", "B voltage_now 4000000",
        "B status Discharging",
    ])
    s = parse_samples(text)
    assert len(s) == 2
    assert s[0]["temps_c"] == {"cpu-0-0": 45.0, "battery": 30.0}
    assert "Is a directory" in s[0]["unknown"]["temp:skin"]
    assert s[0]["battery_current_ua"] == -300000 and s[0]["battery_sign_inverted"]
    assert s[0]["power_w"] == pytest.approx(1.2) and s[0]["battery_pct"] == 77
    assert s[0]["cpu_khz"] == {0: 1804800} and "cpu4_khz" in s[0]["unknown"]
    assert s[0]["vmhwm_kb"] == 1234
    summ = summarise(s)
    assert summ["temperature_max_c"] == 46.0 and summ["vmhwm_max_kb"] == 1234
    assert "while :" in sampler_script(0.5, "/x/pid")


def test_sampler_drops_a_sample_cut_short():
    """The sampler ends each sample with `E`; stopping it mid-block leaves a partial sample
    (here only its uptime line) that must not count as a sample without sensors."""
    assert "echo E;" in sampler_script(0.5, "/x/pid")
    text = "\n".join(["T 1.0", "Z 0 cpu-0-0 45000", "B status Discharging", "E",  # noqa: FLY002
                      "T 1.5", "Z 0 cpu-0-0 46000", "B status Discharging", "E",
                      "T 2.0", "Z 0 cpu-0"])
    s = parse_samples(text)
    assert [x["t_s"] for x in s] == [1.0, 1.5] and all(x["temps_c"] for x in s)


# --- fuzzing: garbage never crashes -----------------------------------------------------
junk = st.one_of(st.text(max_size=300), st.binary(max_size=100).map(lambda b: b.decode("latin-1")))
lines = st.lists(st.one_of(
    junk,
    st.sampled_from(["T ", "Z ", "B current_now ", "B voltage_now ", "B status ", "F ", "M ",
                     "Thermal Status: ", "HAL Ready: ", "level: ", "scale: ", "status: ",
                     "USB powered: ", "[ro.soc.model]: [", "VmHWM: "]).flatmap(
        lambda p: junk.map(lambda j: p + j))), max_size=30).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(lines)
def test_fuzz_text_parsers_never_crash(text):
    ts = P.parse_thermalservice(text)
    assert isinstance(ts.status, (int, P.Unknown))
    if isinstance(ts.status, int):
        assert 0 <= ts.status <= 6
    b = P.parse_dumpsys_battery(text)
    assert isinstance(b.level_pct, (float, P.Unknown))
    if isinstance(b.level_pct, float):
        assert 0 <= b.level_pct <= 100
    P.parse_getprop(text)
    P.parse_thermal_zones(text)
    P.parse_vmhwm(text)
    P.battery_from_sysfs(P.parse_power_supply_uevent(text))
    samples = parse_samples(text)
    summarise(samples)
    for s in samples:
        for v in s["temps_c"].values():
            assert -40 <= v <= 150


@settings(max_examples=300, deadline=None)
@given(st.one_of(junk, st.integers(-10**20, 10**20).map(str), st.none()),
       st.sampled_from([None, "Charging", "Discharging", "Full", "garbage"]))
def test_fuzz_value_parsers_never_crash(raw, status):
    for fn in (P.parse_thermal_temp, P.parse_battery_voltage, P.parse_battery_capacity,
               P.parse_cpufreq):
        v = fn(raw)
        assert isinstance(v, (int, float, P.Unknown))
        if isinstance(v, P.Unknown):
            assert v.reason
    c = P.parse_battery_current(raw, status=status)
    assert isinstance(c, (P.Current, P.Unknown))
    if isinstance(c, P.Current):
        assert abs(c.ua) <= P.CURRENT_MAX_UA
    P.parse_cpu_list(raw)
