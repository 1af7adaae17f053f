"""Per-frame latency, end to end and per stage, in the profile's mode.

Warm-up frames are excluded; p50/p90/p95/p99 are kept in the record and the profile's
latency targets (latency_p95_ms, blend_p95_ms, ...) are asserted."""


def test_latency(swap, profile, record_latency, recorder):
    settings = profile.run
    run = swap("latency", save_every=max(1, settings.measured_frames // 2))

    assert len(run.telemetry.measured) == settings.measured_frames
    assert len(run.telemetry.warmup) == settings.warmup_frames
    assert len(run.stage_ms["total"]) == settings.measured_frames, "warm-up must be excluded"
    record_latency(run, variant=f"mode={run.summary['mode']}")
    recorder.assert_targets()
