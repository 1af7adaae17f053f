"""runner/sdist.py fetches a pinned sdist through the index pip is configured with, never
through pip's resolver (ncnn's setup.py stamps today's date into its version), and
runner/build.py keys its caches by content, so a clone in another folder reuses them."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from helpers.paths import REPO

PAYLOAD = b"not really a tarball, but bytes with a pinned hash\n" * 100
FILENAME = "demo-1.0.tar.gz"
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


sdist = _load(REPO / "runner" / "sdist.py", "swaplab_test_sdist")


class _Index(http.server.BaseHTTPRequestHandler):
    """A PEP 691 / PEP 503 index on loopback: /simple/demo/ and /files/<name>."""

    files: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self):
        type(self).requests.append((self.path, self.headers.get("Accept", "")))
        if self.path == "/simple/demo/":
            if "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", ""):
                body = json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": [
                    {"filename": n, "url": f"../../files/{n}", "hashes": {}}
                    for n in self.files]}).encode()
                ctype = "application/vnd.pypi.simple.v1+json"
            else:
                body = "".join(f'<a href="/files/{n}#sha256=x">{n}</a><br>'
                               for n in self.files).encode()
                ctype = "text/html"
        elif self.path.startswith("/files/") and self.path[7:] in self.files:
            body, ctype = self.files[self.path[7:]], "application/octet-stream"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def index():
    _Index.files = {FILENAME: PAYLOAD}
    _Index.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


@pytest.fixture
def pip_env(monkeypatch, tmp_path):
    """pip configured only by this test: no config files, no find-links, no extra index."""
    cfg = tmp_path / "pip.conf"
    cfg.write_text("[global]\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(cfg))
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_fetch_uses_pips_index_url_and_pep691(index, pip_env, tmp_path):
    pip_env.setenv("PIP_INDEX_URL", index)
    dest = tmp_path / "dl" / FILENAME
    got = sdist.fetch_sdist("demo", FILENAME, SHA, dest, progress=lambda m: None)
    assert got == dest and dest.read_bytes() == PAYLOAD
    page = [r for r in _Index.requests if r[0] == "/simple/demo/"]
    assert page and "application/vnd.pypi.simple.v1+json" in page[0][1]
    # a second call finds the verified file and asks nobody
    _Index.requests.clear()
    sdist.fetch_sdist("demo", FILENAME, SHA, dest, progress=lambda m: None)
    assert _Index.requests == []


def test_fetch_reads_pep503_html_from_a_file_index(pip_env, tmp_path):
    """A file:// index (as `pip config` may name one) with a PEP 503 HTML page."""
    root = tmp_path / "simple"
    (root / "demo").mkdir(parents=True)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / FILENAME).write_bytes(PAYLOAD)
    (root / "demo" / "index.html").write_text(f'<a href="../../files/{FILENAME}">{FILENAME}</a>')
    pip_env.setenv("PIP_INDEX_URL", root.as_uri())
    dest = tmp_path / "dl" / FILENAME
    assert sdist.fetch_sdist("demo", FILENAME, SHA, dest, progress=lambda m: None) == dest
    assert dest.read_bytes() == PAYLOAD


def test_extra_index_is_tried_after_the_main_one(index, pip_env, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    pip_env.setenv("PIP_INDEX_URL", empty.as_uri())
    pip_env.setenv("PIP_EXTRA_INDEX_URL", index)
    dest = tmp_path / "dl" / FILENAME
    assert sdist.fetch_sdist("demo", FILENAME, SHA, dest, progress=lambda m: None) == dest


def test_wrong_hash_and_missing_file_say_what_was_tried(index, pip_env, tmp_path):
    pip_env.setenv("PIP_INDEX_URL", index)
    dest = tmp_path / "dl" / FILENAME
    with pytest.raises(sdist.FetchError) as e:
        sdist.fetch_sdist("demo", FILENAME, "0" * 64, dest, progress=lambda m: None)
    msg = str(e.value)
    assert f"index {index}" in msg and f"/files/{FILENAME}" in msg and "sha256" in msg
    assert f"Put the file there by hand to build offline: {dest}" in msg
    assert not dest.exists(), "a file with the wrong hash must not stay where builds look"
    with pytest.raises(sdist.FetchError, match=f"{index}/nothing/: no nothing-1.0.tar.gz"):
        sdist.fetch_sdist("nothing", "nothing-1.0.tar.gz", SHA, tmp_path / "n.tar.gz",
                          progress=lambda m: None)


def test_a_file_put_by_hand_is_used_offline(pip_env, tmp_path):
    pip_env.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/unreachable")
    dest = tmp_path / FILENAME
    dest.write_bytes(PAYLOAD)
    assert sdist.fetch_sdist("demo", FILENAME, SHA, dest, progress=lambda m: None) == dest


def test_ncnn_sdist_from_the_real_index(tmp_path):
    """The pinned ncnn sdist, from the index this machine's pip is configured with (CI
    reaches the package registries): today's date plays no part."""
    build = _load(REPO / "runner" / "build.py", "swaplab_test_build")
    dest = tmp_path / f"ncnn-{build.NCNN_PYPI_VERSION}.tar.gz"
    sdist.fetch_sdist("ncnn", dest.name, build.NCNN_SDIST_SHA256, dest, progress=lambda m: None)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == build.NCNN_SDIST_SHA256


def test_cache_keys_do_not_depend_on_the_checkout_folder(tmp_path):
    """A clone in another folder computes the same ncnn and runner cache keys (CI's clone is
    always a new folder; a path in a key rebuilt arm64 ncnn, ~13 min, every time)."""
    code = ("import importlib.util, json, sys; "
            "s = importlib.util.spec_from_file_location('b', sys.argv[1]); "
            "b = importlib.util.module_from_spec(s); s.loader.exec_module(b); "
            "print(json.dumps({abi: [b.ncnn_install_dir(abi).parent.name, "
            "b._hash([f.relative_to(b.RUNNER_DIR).as_posix() for f in b.runner_sources()] "
            "+ [f.read_bytes() for f in b.runner_sources()])] for abi in b.ABIS}))")
    copy = tmp_path / "elsewhere" / "runner"
    shutil.copytree(REPO / "runner", copy, ignore=shutil.ignore_patterns("__pycache__"))
    keys = []
    for runner in (REPO / "runner", copy):
        r = subprocess.run([sys.executable, "-c", code, str(runner / "build.py")],
                           capture_output=True, text=True, check=True,
                           env=dict(os.environ, SWAPLAB_CACHE=str(tmp_path / "cache")))
        keys.append(json.loads(r.stdout))
    assert keys[0] == keys[1]
