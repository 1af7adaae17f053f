"""The runner's thermal fallback: its profile settings and the check that replays it. Pure,
no I/O.

Above `thermal_limit_c` the runner takes one step down a ladder whose order the profile
sets (`[thermal] fallback = ["fps", "gpu", "mode"]`): lower the camera frame rate to
`fps_low`, turn the GPU off, step the mode down (base -> small -> tiny, auto mode only).
Below the limit minus the hysteresis it takes one step back up, the last rung stepped down
first. A rung that cannot move is passed over; the GPU rung, when no net runs on the GPU,
is logged once as skipped (`fallback_switch` with `skipped: true`). Mode steps are the
telemetry's `mode_switch` lines, frame-rate and GPU steps its `fallback_switch` lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from harness.power.metrics import LADDER

RUNGS = ("fps", "gpu", "mode")
DEFAULT_ORDER = ("mode",)
DOWN, UP = "above_limit", "below_limit_minus_hysteresis"


class FallbackSettingsError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class FallbackSettings:
    order: tuple[str, ...] = DEFAULT_ORDER
    #: the lowered camera rate; None: half the profile's camera_fps
    fps_low: float | None = None

    def runner_args(self, camera_fps: float | None) -> list[str]:
        """swap_runner flags for this ladder (camera_fps None: no camera clock)."""
        args = ["--thermal-fallback", ",".join(self.order)]
        if camera_fps and self.fps_low is not None:
            args += ["--thermal-fps-low", f"{self.fps_low:g}"]
        return args

    def fps_low_for(self, camera_fps: float | None) -> float | None:
        if not camera_fps:
            return None
        return self.fps_low if self.fps_low is not None else camera_fps / 2


def fallback_settings(table: Mapping[str, Any] | None, where: str = "[thermal]") -> FallbackSettings:
    """The profile's `[thermal]` table: `fallback` (rungs in order), `fps_low`."""
    table = table or {}
    for key in table:
        if key not in ("fallback", "fps_low"):
            raise FallbackSettingsError(f"{where}: key 'thermal.{key}': unknown key; expected "
                                        "fallback or fps_low")
    order = table.get("fallback", list(DEFAULT_ORDER))
    if not isinstance(order, list) or not order or not all(isinstance(r, str) for r in order):
        raise FallbackSettingsError(f"{where}: key 'thermal.fallback': expected a non-empty "
                                    f"array of {', '.join(RUNGS)}, got {order!r}")
    for r in order:
        if r not in RUNGS:
            raise FallbackSettingsError(f"{where}: key 'thermal.fallback': unknown rung {r!r}; "
                                        f"expected {', '.join(RUNGS)}")
    if len(set(order)) != len(order):
        raise FallbackSettingsError(f"{where}: key 'thermal.fallback': a rung is named twice "
                                    f"in {order!r}")
    fps_low = table.get("fps_low")
    if fps_low is not None and (isinstance(fps_low, bool) or not isinstance(fps_low, (int, float))
                                or not 0 < fps_low <= 1000):
        raise FallbackSettingsError(f"{where}: key 'thermal.fps_low': expected frames per "
                                    f"second > 0, got {fps_low!r}")
    return FallbackSettings(tuple(order), None if fps_low is None else float(fps_low))


@dataclasses.dataclass
class FallbackCheck:
    ok: bool
    problems: list[str]
    steps_down: int             # steps that moved, any rung
    steps_up: int
    max_temp_c: float | None
    cooled_below: bool          # a check read a temperature below limit - hysteresis
    reached_limit: bool         # a check read a temperature above the limit
    #: every step in order: {"index", "rung", "direction" (down/up), "from", "to", "skipped"}
    steps: list[dict] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def first(self, direction: str, rung: str) -> int | None:
        """Index of the first step of `rung` in `direction` that moved (None: none)."""
        return next((s["index"] for s in self.steps if s["rung"] == rung
                     and s["direction"] == direction and not s["skipped"]), None)


def _fps_text(v: float | None) -> str:
    return f"{v:g}" if v is not None else "?"


class _Replay:
    """The runner's rule, state by state."""

    def __init__(self, order, start_mode, ladder, fps, fps_low, auto):
        self.order, self.ladder, self.auto = tuple(order), tuple(ladder), auto
        self.mode, self.fps, self.fps_low = start_mode, fps, fps_low
        self.fps_lowered = False
        self.gpu = "on"  # on | off | skipped (no net on the GPU)

    def expected(self, down: bool, gpu_logged: dict | None) -> list[tuple[str, str, str, bool]]:
        """(rung, from, to, skipped) the runner should log at a check."""
        out = []
        for rung in (self.order if down else tuple(reversed(self.order))):
            if rung == "fps":
                if self.fps and self.fps_low and self.fps_low < self.fps and \
                        self.fps_lowered != down:
                    a, b = (self.fps, self.fps_low) if down else (self.fps_low, self.fps)
                    out.append(("fps", _fps_text(a), _fps_text(b), False))
                    return out
            elif rung == "gpu":
                if down and self.gpu == "on":
                    skipped = gpu_logged is None or bool(gpu_logged.get("skipped"))
                    out.append(("gpu", "cpu" if skipped else "gpu", "cpu", skipped))
                    if not skipped:
                        return out
                elif not down and self.gpu == "off":
                    out.append(("gpu", "cpu", "gpu", False))
                    return out
            elif self.mode in self.ladder and self.auto:
                pos = self.ladder.index(self.mode)
                nxt = pos - 1 if down else pos + 1
                if 0 <= nxt < len(self.ladder):
                    out.append(("mode", self.mode, self.ladder[nxt], False))
                    return out
        return out

    def apply(self, rung: str, sw: Mapping, down: bool) -> None:
        if rung == "fps":
            self.fps_lowered = down
        elif rung == "gpu":
            self.gpu = "skipped" if sw.get("skipped") else ("off" if down else "on")
        elif sw.get("to") in self.ladder:
            self.mode = sw["to"]


def check_fallback(frames: Sequence[Mapping], switches: Sequence[Mapping], *, limit_c: float,
                   hysteresis_c: float, check_every: int, start_mode: str = "base",
                   ladder: Sequence[str] = LADDER, fallback_switches: Sequence[Mapping] = (),
                   order: Sequence[str] = DEFAULT_ORDER, fps: float | None = None,
                   fps_low: float | None = None, auto: bool = True) -> FallbackCheck:
    """Replay the runner's fallback rule over the frames' temperature readings and compare
    with the logged switches (`switches`: mode_switch lines; `fallback_switches`: the fps /
    gpu lines): at every check (index % check_every == 0) with a temperature, one step down
    the ladder `order` when above `limit_c`, one step up in reverse order below
    `limit_c - hysteresis_c`; every step logged with from/to/temp/reason; frames run in the
    mode (and, when paced, at the frame rate) in force. `fps` / `fps_low`: the camera's
    rate and the lowered one (None: no camera clock); `auto`: the run was `--mode auto`
    (else the mode rung never moves)."""
    problems: list[str] = []
    logged: dict[int, dict[str, dict]] = {}
    for rung, sw in [("mode", s) for s in switches] + [(s.get("rung"), s) for s in fallback_switches]:
        at = logged.setdefault(sw["index"], {})
        if rung in at:
            problems.append(f"two switches logged at frame {sw['index']}")
        at[rung] = sw
    frame_idx = {f["index"] for f in frames}
    for i in logged:
        if i not in frame_idx:
            problems.append(f"switch at index {i} has no frame")
    rp = _Replay(order, start_mode, ladder, fps, fps_low, auto)
    steps: list[dict] = []
    temps = [f["temp_c"] for f in frames if isinstance(f.get("temp_c"), (int, float))]
    cooled = reached = False
    for f in frames:
        i, t = f["index"], f.get("temp_c")
        here = dict(logged.get(i, {}))
        expected: list[tuple[str, str, str, bool]] = []
        down = None
        if i % check_every == 0 and isinstance(t, (int, float)):
            if t > limit_c:
                reached, down = True, True
            elif t < limit_c - hysteresis_c:
                if reached or any(s["direction"] == "down" for s in steps):
                    cooled = True
                down = False
            if down is not None:
                expected = rp.expected(down, here.get("gpu"))
        reason = DOWN if down else UP
        for rung, frm, to, skipped in expected:
            sw = here.pop(rung, None)
            label = "" if rung == "mode" else f"{rung} "
            if sw is None:
                if not skipped:
                    problems.append(f"frame {i}: {t} C should have switched {label}{frm}->{to} "
                                    f"({reason}), no switch logged")
                continue
            if sw.get("from") != frm:
                problems.append(f"frame {i}: switch logged from {sw.get('from')!r} but the "
                                f"{rung if rung != 'mode' else 'mode'} in force was {frm!r}")
            if (sw.get("to"), sw.get("reason")) != (to, reason):
                problems.append(f"frame {i}: logged {sw.get('to')!r}/{sw.get('reason')!r}, "
                                f"expected {to!r}/{reason!r} at {t} C")
            if sw.get("temp_c") is None:
                problems.append(f"frame {i}: switch logged without temp_c")
            rp.apply(rung, sw, down)
            steps.append({"index": i, "rung": rung, "direction": "down" if down else "up",
                          "from": sw.get("from"), "to": sw.get("to"),
                          "skipped": bool(sw.get("skipped"))})
        for rung, sw in here.items():  # logged but not expected
            problems.append(f"frame {i}: switch {sw.get('from')}->{sw.get('to')} at "
                            f"{sw.get('temp_c')} C not expected (limit {limit_c:g} C, "
                            f"hysteresis {hysteresis_c:g} C, check every {check_every})")
            rp.apply(rung, sw, sw.get("reason") == DOWN)
        if f.get("mode") != rp.mode:
            problems.append(f"frame {i}: ran in {f.get('mode')!r}, mode in force {rp.mode!r}")
        in_force = rp.fps_low if rp.fps_lowered else rp.fps
        if fps and f.get("camera_fps") is not None and in_force is not None \
                and abs(float(f["camera_fps"]) - in_force) > 1e-6:
            problems.append(f"frame {i}: arrived at {f['camera_fps']:g} fps, rate in force "
                            f"{in_force:g} fps")
    if len(problems) > 20:
        problems = problems[:20] + [f"... and {len(problems) - 20} more"]
    moved = [s for s in steps if not s["skipped"]]
    return FallbackCheck(not problems, problems,
                         sum(1 for s in moved if s["direction"] == "down"),
                         sum(1 for s in moved if s["direction"] == "up"),
                         max(temps) if temps else None, cooled, reached, steps)
