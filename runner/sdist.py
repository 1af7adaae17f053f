"""Fetch a pinned source distribution from the package index pip is configured with.

Why not `pip download`: pip prepares an sdist's metadata before it keeps the file, and
ncnn's setup.py stamps today's date into its version (1.0.<today>), which never equals the
pinned version, so pip aborts (new and legacy resolver alike). Here the file's URL comes
from the index's simple API (PEP 691 JSON, PEP 503 HTML as fallback), the file is
downloaded with the standard library and checked against the pinned sha256. Nothing
depends on the date or on pip's resolver.

pip's configuration is respected: `pip config list` (config files and PIP_* variables)
gives index-url, extra-index-url, find-links, cert and proxy; with no index-url set, pip's
own default index is used. https_proxy/no_proxy from the environment apply as for pip.

Why not a library (pypi-simple): it reads none of pip's configuration, needs requests (no
file:// indexes) and this module must run with a bare python before .venv exists.
"""
from __future__ import annotations

import hashlib
import html.parser
import json
import os
import pathlib
import shlex
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

PEP691 = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{PEP691}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
TIMEOUT_S = 60


class FetchError(RuntimeError):
    pass


def pip_config(python: str = sys.executable) -> dict[str, str]:
    """pip's effective settings, later sources winning as in pip (files, then PIP_*)."""
    try:
        r = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True,
                           text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out: dict[str, str] = {}
    for line in r.stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        name = key.rpartition(".")[2]  # global.index-url, install.cert, :env:.proxy
        try:
            value = shlex.split(value)[0] if value.strip() else ""
        except ValueError:
            value = value.strip().strip("'\"")
        if key.startswith((":env:", "global.")) or name not in out:
            out[name] = value
    return out


def default_index() -> str:
    """pip's built-in index, asked from pip so that no host is written here."""
    from pip._internal.models.index import PyPI
    return PyPI.simple_url


def indexes(cfg: dict[str, str]) -> list[str]:
    first = cfg.get("index-url") or default_index()
    extra = (cfg.get("extra-index-url") or "").split()
    return [first, *extra]


def _opener(cfg: dict[str, str]) -> urllib.request.OpenerDirector:
    ctx = ssl.create_default_context(cafile=cfg.get("cert") or None)
    handlers: list = [urllib.request.HTTPSHandler(context=ctx)]
    proxy = cfg.get("proxy")
    if proxy:
        handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
    return urllib.request.build_opener(*handlers)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._text = ""

    def handle_data(self, data):
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._text.strip(), self._href))
            self._href = None


def _project_url(index: str, project: str) -> str:
    return index.rstrip("/") + "/" + project + "/"


def find_file(opener, index: str, project: str, filename: str) -> str | None:
    """URL of `filename` in `project`'s page on `index` (None: the index lacks it)."""
    page = _project_url(index, project)
    req = urllib.request.Request(page, headers={"Accept": ACCEPT})
    if page.startswith("file:"):
        path = urllib.request.url2pathname(urllib.parse.urlparse(page).path)
        for cand in (os.path.join(path, "index.html"), path):
            if os.path.isfile(cand):
                body, ctype, page = pathlib.Path(cand).read_bytes(), "text/html", \
                    pathlib.Path(cand).as_uri()
                break
        else:
            return None
    else:
        try:
            with opener.open(req, timeout=TIMEOUT_S) as resp:
                body, ctype = resp.read(), resp.headers.get("Content-Type", "")
                page = resp.geturl()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise
    if ctype.split(";")[0].strip() == PEP691:
        for f in json.loads(body).get("files", []):
            if f.get("filename") == filename:
                return urllib.parse.urljoin(page, f["url"])
        return None
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    for text, href in parser.links:
        name = urllib.parse.unquote(urllib.parse.urlparse(href).path.rsplit("/", 1)[-1])
        if text == filename or name == filename:
            return urllib.parse.urljoin(page, href)
    return None


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_sdist(project: str, filename: str, sha256: str, dest: pathlib.Path,
                progress=print, python: str = sys.executable) -> pathlib.Path:
    """`dest` (a path ending in `filename`) holding the verified file. A file already at
    `dest` with the right hash is used as it is: that is where a user puts it by hand."""
    dest = pathlib.Path(dest)
    if dest.is_file():
        if _sha256(dest) == sha256:
            return dest
        progress(f"[fetch] {dest}: sha256 differs from the pinned one; fetching again")
        dest.unlink()
    cfg = pip_config(python)
    tried: list[str] = []
    for folder in (cfg.get("find-links") or "").split():
        local = pathlib.Path(urllib.request.url2pathname(urllib.parse.urlparse(folder).path)
                             if folder.startswith("file:") else folder) / filename
        tried.append(f"find-links {folder}: {local}")
        if local.is_file() and _sha256(local) == sha256:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(local.read_bytes())
            return dest
    opener = _opener(cfg)
    for index in indexes(cfg):
        try:
            url = find_file(opener, index, project, filename)
        except (OSError, ValueError, urllib.error.URLError) as e:
            tried.append(f"index {index}: {_project_url(index, project)}: {e}")
            continue
        if url is None:
            tried.append(f"index {index}: {_project_url(index, project)}: no {filename}")
            continue
        progress(f"[fetch] {filename} from {index}")
        try:
            _download(opener, url, dest, progress)
        except (OSError, urllib.error.URLError) as e:
            tried.append(f"index {index}: {url}: {e}")
            continue
        digest = _sha256(dest)
        if digest == sha256:
            return dest
        dest.unlink()
        tried.append(f"index {index}: {url}: sha256 {digest}, pinned {sha256}")
    raise FetchError(
        f"could not fetch {filename} ({project}, sha256 {sha256}). Tried:\n  "
        + "\n  ".join(tried)
        + f"\nPut the file there by hand to build offline: {dest}")


def _download(opener, url: str, dest: pathlib.Path, progress) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with opener.open(url, timeout=TIMEOUT_S) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            done, shown = 0, -1
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
                done += len(block)
                pct = int(100 * done / total) if total else -1
                if total and pct // 10 != shown // 10:
                    shown = pct
                    progress(f"[fetch] {dest.name}: {pct}% of {total >> 20} MiB")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
