"""The input sets are made once per content key, even when several makers start at once:
xdist workers of one `./run lab -n auto`, or two labs sharing one SWAPLAB_CACHE. (CI run of
stop 21: three workers wrote one `tmp-frames.avi`; the second rename found it gone.)"""

from __future__ import annotations

import threading

import pytest
from helpers.paths import REPO

from harness.inputs import build_once
from harness.inputs.sets import lab_inputs

MODELS = REPO / "models"


@pytest.mark.parametrize("round_", range(3))  # a race: more rounds, more chances to lose it
def test_makers_starting_together_all_get_the_whole_set(tmp_path, round_):
    cache = tmp_path / "cache"
    start = threading.Barrier(4)
    results, errors = [], []

    def make():
        start.wait()
        try:
            results.append(lab_inputs(MODELS, cache, progress=lambda _msg: None))
        except Exception as e:  # noqa: BLE001 - reported below, with the maker's error
            errors.append(e)

    makers = [threading.Thread(target=make) for _ in range(4)]
    for t in makers:
        t.start()
    for t in makers:
        t.join()
    assert errors == []
    assert all(r == results[0] for r in results)
    for files in results[0].values():
        assert files and all(p.is_file() and p.stat().st_size > 0 for p in files.values())
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".")]


def test_the_second_maker_keeps_the_first_makers_set(tmp_path):
    out = tmp_path / "set-1234"

    def slow_build(folder):
        # another maker finishes while this one is still writing
        build_once(out, lambda f: (f / "a.bin").write_bytes(b"first"))
        (folder / "a.bin").write_bytes(b"second")

    assert build_once(out, slow_build) == out
    assert (out / "a.bin").read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set-1234"]


def test_a_failed_build_leaves_no_set_behind(tmp_path):
    out = tmp_path / "set-1234"

    def broken(folder):
        (folder / "half.bin").write_bytes(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        build_once(out, broken)
    assert list(tmp_path.iterdir()) == []
    # and the next maker starts from nothing, not from the half-made folder
    build_once(out, lambda f: (f / "a.bin").write_bytes(b"ok"))
    assert [p.name for p in out.iterdir()] == ["a.bin"]
