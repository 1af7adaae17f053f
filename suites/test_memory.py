"""Peak resident memory of the runner (VmHWM / ru_maxrss as the runner reports it)."""


def test_peak_memory(swap, profile, recorder):
    run = swap("memory")

    rss = run.telemetry.rss_mb()
    if rss:
        recorder.measure("memory_rss_mb", rss, unit="mb", direction="lower",
                         variant=f"mode={run.summary['mode']}")
    peak = recorder.measure("memory_peak_mb", run.peak_mb, unit="mb", direction="lower",
                            variant=f"mode={run.summary['mode']}")
    assert peak.summary["max"] > 0, f"{run.telemetry.source}: peak_rss_kb is 0"
    recorder.assert_targets()
