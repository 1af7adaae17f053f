"""The quality thresholds: the one place they are defined.

Defaults below; a device profile overrides any of them in a `[quality]` table, e.g.

    # device_profiles/snapdragon6.toml
    [quality]
    colour_de_max = 5.0
    pose_nme_max = 0.06

How each default was chosen is in docs/quality.md ("Thresholds"): every one sits between
the worst good blend and the mildest broken blend of the calibration set
(`python -m harness.quality.calibrate`), nearer the good side where the gap is wide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class QualityThresholds:
    #: CIEDE2000 between the face's skin just inside the mask boundary and the target's
    #: skin just outside (median over boundary sectors). The mobile pipeline's gate.
    colour_de_max: float = 5.0
    #: Gradient energy on the mask boundary over the energy just inside/outside it,
    #: divided by the same ratio on the target frame (1.0 = no added edge).
    seam_ratio_max: float = 2.15
    #: Mean landmark distance, output vs target, over the inter-ocular distance.
    pose_nme_max: float = 0.0225
    #: SSIM (mean over pixels outside the dilated mask) of output vs target.
    background_ssim_min: float = 0.70
    #: PSNR in dB over the same pixels.
    background_psnr_min_db: float = 26.0
    #: d(output, target) - d(output, source) in the identity space (embedding distance);
    #: > 0 means the output face is nearer the source.
    identity_margin_min: float = 0.0
    #: CIEDE2000 of the whole face interior's robust skin colour, output vs target.
    face_colour_de_max: float = 6.0
    #: Doubled brows: the smaller of "target's brows kept" and "source's brows shown" (NCC).
    doubled_brows_max: float = 0.5
    #: NCC(output, target) - NCC(output, warped source) around the eyes (glasses left).
    target_structure_max: float = 0.0
    #: Target's glasses frame kept above the eyes minus kept below them (half-erased glasses).
    half_erased_glasses_max: float = 0.35
    #: Source's lens rims (outer lower quarter of each ring) the output does not show; worse
    #: lens (a source's glasses cut at the mask edge).
    cut_glasses_max: float = 0.3
    #: Worst boundary sector's share of pixels that are new non-skin (background leak).
    leak_ratio_max: float = 0.37
    #: Eye centres, nose root and tip: how far the source's moved from their expected place
    #: (registration), mean distance / IOD.
    pose_points_nme_max: float = 0.02
    #: Temporal: largest deviation of the pose points from their median over the frames, px.
    jitter_max_px: float = 0.5
    #: Temporal: largest share of face pixels changing between two frames beyond the target.
    flicker_max: float = 0.05
    #: Right faces: target faces left unswapped that the face policy asked for.
    missed_faces_max: float = 0.0
    #: Golden comparison: SSIM of luminance over the face box, output vs golden frame.
    golden_ssim_min: float = 0.95
    #: Golden comparison: 95th percentile of the per-pixel CIEDE2000 over the face box.
    golden_de_p95_max: float = 4.0
    #: Golden comparison: share of the whole frame whose CIEDE2000 exceeds 5 (after a 2 px blur).
    golden_changed_max: float = 0.002

    def override(self, table: Mapping[str, Any] | None,
                 source: str = "[quality]") -> QualityThresholds:
        """A copy with the keys of `table` replacing the defaults; unknown keys or
        non-numbers raise ValueError naming `source` and the key."""
        if not table:
            return self
        names = {f.name for f in dataclasses.fields(self)}
        changes: dict[str, float] = {}
        for key, value in table.items():
            if key not in names:
                raise ValueError(f"{source}: unknown quality key {key!r}; expected one of "
                                 f"{', '.join(sorted(names))}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                # a bad profile value: callers catch ValueError for every profile error
                raise ValueError(  # noqa: TRY004
                    f"{source}: key {key!r}: expected a number, got {value!r}")
            changes[key] = float(value)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


DEFAULT_THRESHOLDS = QualityThresholds()


def thresholds_for_profile(profile: Any | None) -> QualityThresholds:
    """Thresholds for a `harness.profiles.Profile` (its `[quality]` table, kept by the
    profile loader in `profile.extra["quality"]`), a plain mapping of the TOML document,
    or None (the defaults)."""
    if profile is None:
        return DEFAULT_THRESHOLDS
    if isinstance(profile, Mapping):
        table = profile.get("quality")
        source = "[quality]"
    else:
        table = (getattr(profile, "extra", None) or {}).get("quality")
        source = f"{getattr(profile, 'path', getattr(profile, 'name', 'profile'))}: [quality]"
    return DEFAULT_THRESHOLDS.override(table, source)
