"""Cold start: model load + source face + first frame, over several fresh processes."""


def test_cold_start(swap, profile, recorder):
    runs = [swap(f"cold-{i}", warmup=0, frames=1) for i in range(profile.run.cold_start_runs)]

    recorder.measure("model_load_ms", [r.summary["model_load_ms"] for r in runs],
                     unit="ms", direction="lower", variant=f"mode={profile.run.mode}")
    recorder.measure("first_frame_ms", [r.summary.get("first_frame_ms") or 0.0 for r in runs],
                     unit="ms", direction="lower", variant=f"mode={profile.run.mode}")
    recorder.measure("cold_start_ms", [r.cold_start_ms for r in runs], unit="ms",
                     direction="lower", variant=f"mode={profile.run.mode}",
                     processes=len(runs))
    recorder.assert_targets()
