"""Tests for data_utils.download against a local HTTP server (no internet needed).

The served archives are built from a few real Oxford-102 images and captions:
tests/fixtures/oxford102_mini when present, else the full dataset ($OXFORD102_DIR, else data/oxford102).
"""
from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import threading
import urllib.parse
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from data_utils import download as dl

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [REPO / "tests/fixtures/oxford102_mini", REPO / os.environ.get("OXFORD102_DIR", "data/oxford102")]


def _source_dir() -> Path:
    for d in CANDIDATES:
        if (d / "jpg").is_dir() and (d / "text_c10").is_dir() and (d / "setid.mat").is_file():
            return d
    pytest.skip("no Oxford-102 data: neither tests/fixtures/oxford102_mini nor the full dataset exists")


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    """Serves ``files`` with Range support; ``/norange/*`` ignores Range; ``/drive*`` asks to confirm."""

    files: dict[str, bytes] = {}
    log: list[tuple[str, str | None]] = []

    def log_message(self, *args: object) -> None:  # keep pytest output quiet
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        self.log.append((self.path, self.headers.get("Range")))
        if url.path.startswith("/drive") and "confirm" not in query:
            return self._confirm_page(url.path, query)
        path = url.path.removeprefix("/norange")
        if url.path.startswith("/drive"):
            path = "/" + query["id"]
        data = self.files.get(path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        start = int(rng.removeprefix("bytes=").rstrip("-")) if rng and not url.path.startswith("/norange") else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def _confirm_page(self, path: str, query: dict[str, str]) -> None:
        if path == "/drive-form":  # current Drive: a GET form with hidden inputs
            body = (f'<html><body><p>Google Drive can\'t scan this file for viruses.</p>'
                    f'<form id="download-form" action="/drive-form" method="get">'
                    f'<input type="submit" value="Download anyway"/>'
                    f'<input type="hidden" name="id" value="{query["id"]}">'
                    f'<input type="hidden" name="export" value="download">'
                    f'<input type="hidden" name="confirm" value="t"></form></body></html>')
        else:  # older Drive: a link carrying the confirm token
            body = (f'<html><a id="uc-download-link" href="/drive?export=download&amp;'
                    f'confirm=AbC_9&amp;id={query["id"]}">Download anyway</a></html>')
        raw = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture(scope="module")
def mini() -> dict:
    """Archives and expected files built from 3 real images of 2 classes."""
    src = _source_dir()
    classes = sorted(p for p in (src / "text_c10").glob("class_*") if p.is_dir())[:2]
    txts = sorted(classes[0].glob("image_*.txt"))[:2] + sorted(classes[1].glob("image_*.txt"))[:1]
    jpgs = {f"jpg/{t.stem}.jpg": (src / "jpg" / f"{t.stem}.jpg").read_bytes() for t in txts}
    caps = {f"text_c10/{t.parent.name}/{t.name}": t.read_bytes() for t in txts}
    return {
        "jpgs": jpgs, "caps": caps,
        "/102flowers.tgz": _tar_gz(jpgs),
        "/cvpr2016_flowers.tar.gz": _tar_gz({f"cvpr2016_flowers/{k}": v for k, v in caps.items()}
                                            | {"cvpr2016_flowers/README.txt": b"not needed"}),
        "/imagelabels.mat": (src / "imagelabels.mat").read_bytes(),
        "/setid.mat": (src / "setid.mat").read_bytes(),
    }


@pytest.fixture(scope="module")
def server(mini: dict):
    _Handler.files = {k: v for k, v in mini.items() if k.startswith("/")}
    _Handler.files["/big.bin"] = bytes(range(256)) * 2000
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _clear_log():
    _Handler.log.clear()


def _resources(server: str, mini: dict) -> dict[str, dl.Resource]:
    files = {"images": "/102flowers.tgz", "labels": "/imagelabels.mat", "setid": "/setid.mat",
             "captions": "/cvpr2016_flowers.tar.gz"}
    return {k: replace(dl.DEFAULT_RESOURCES[k], url=server + p, md5=_md5(mini[p])) for k, p in files.items()}


def _assert_official_layout(out: Path, mini: dict) -> None:
    for rel, data in (mini["jpgs"] | mini["caps"]).items():
        assert (out / rel).read_bytes() == data
    assert sorted(p.name for p in (out / "text_c10").iterdir()) == sorted({k.split("/")[1] for k in mini["caps"]})
    assert (out / "imagelabels.mat").read_bytes() == mini["/imagelabels.mat"]
    assert (out / "setid.mat").read_bytes() == mini["/setid.mat"]
    assert not list(out.rglob("*.part")) and not list(out.glob(".extract-*"))


def test_full_download_gives_official_layout(tmp_path, server, mini):
    out = dl.download_oxford102(tmp_path / "flowers", resources=_resources(server, mini),
                                expected_classes=2, progress=False)
    _assert_official_layout(out, mini)
    assert len(_Handler.log) == 4
    dl.download_oxford102(out, resources=_resources(server, mini), expected_classes=2, progress=False)
    assert len(_Handler.log) == 4  # second run: everything already in place


def test_cli_with_mirrors(tmp_path, server, mini, monkeypatch):
    res = _resources(server, mini)
    monkeypatch.setattr(dl, "DEFAULT_RESOURCES", {k: replace(r, url="http://unused.invalid/x") for k, r in res.items()})
    monkeypatch.setattr(dl, "NUM_CLASSES", 2)
    argv = ["--out", str(tmp_path / "cli"), "--no-progress"] + [f"--mirror={k}={r.url}" for k, r in res.items()]
    assert dl.main(argv) == 0
    _assert_official_layout(tmp_path / "cli", mini)


def test_wrong_caption_class_count_is_rejected(tmp_path, server, mini):
    with pytest.raises(dl.DownloadError, match="2 class folders, expected 102"):
        dl.download_oxford102(tmp_path, resources=_resources(server, mini), progress=False)
    assert (tmp_path / "jpg").is_dir() and not (tmp_path / "text_c10").exists()
    assert not list(tmp_path.glob(".extract-*"))


@pytest.mark.parametrize("prefix", ["", "/norange"])
def test_resume_from_part_file(tmp_path, server, prefix):
    data = _Handler.files["/big.bin"]
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(data[: len(data) // 2])
    dl.download_file(f"{server}{prefix}/big.bin", dest, _md5(data), chunk_size=4096, progress=True)
    assert dest.read_bytes() == data and not (tmp_path / "big.bin.part").exists()
    assert _Handler.log == [(f"{prefix}/big.bin", f"bytes={len(data) // 2}-")]


def test_checksum_mismatch_raises_and_leaves_nothing(tmp_path, server):
    dest = tmp_path / "big.bin"
    actual = _md5(_Handler.files["/big.bin"])
    with pytest.raises(dl.DownloadError, match=f"big.bin.*expected md5 {'0' * 32}, got {actual}"):
        dl.download_file(f"{server}/big.bin", dest, "0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_with_right_checksum_is_skipped(tmp_path, server):
    data = _Handler.files["/big.bin"]
    (tmp_path / "big.bin").write_bytes(data)
    dl.download_file(f"{server}/big.bin", tmp_path / "big.bin", _md5(data), progress=False)
    assert _Handler.log == []


def test_unreachable_server_says_offline(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(dl.DownloadError) as err:
        dl.download_file(f"http://127.0.0.1:{port}/102flowers.tgz", tmp_path / "x.tgz", progress=False, timeout=2)
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "offline" in msg
    assert "python -m data_utils.prepare --source" in msg and dl.VGG_URL + "102flowers.tgz" in msg
    assert not list(tmp_path.iterdir())


def test_http_error_is_reported(tmp_path, server):
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.download_file(f"{server}/missing.bin", tmp_path / "missing.bin", progress=False)


@pytest.mark.parametrize("path", ["/drive-form", "/drive"])
def test_google_drive_confirm_page_is_followed(tmp_path, server, mini, path):
    data = mini["/cvpr2016_flowers.tar.gz"]
    dest = tmp_path / "cvpr2016_flowers.tar.gz"
    dl.download_file(f"{server}{path}?export=download&id=cvpr2016_flowers.tar.gz", dest, _md5(data), progress=False)
    assert dest.read_bytes() == data
    assert len(_Handler.log) == 2 and "confirm=" in _Handler.log[1][0]


@pytest.mark.parametrize("with_filter", [True, False])
@pytest.mark.parametrize("member", ["../evil.txt", "/evil_abs.txt", "jpg/../../evil.txt"])
def test_unsafe_tar_member_is_rejected(tmp_path, member, with_filter, monkeypatch):
    if not with_filter:  # simulate a Python without tarfile extraction filters
        monkeypatch.delattr(dl.tarfile, "data_filter", raising=False)
    archive = tmp_path / "bad.tgz"
    archive.write_bytes(_tar_gz({"jpg/image_00001.jpg": b"ok", member: b"evil"}))
    target = tmp_path / "out" / "inner"
    target.mkdir(parents=True)
    with pytest.raises(dl.DownloadError, match="unsafe member"):
        dl.safe_extract(archive, target)
    assert not list((tmp_path / "out").rglob("*evil*")) and not (tmp_path / "evil.txt").exists()
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("with_filter", [True, False])
def test_safe_extract_keeps_only_requested_folder(tmp_path, with_filter, monkeypatch):
    if not with_filter:
        monkeypatch.delattr(dl.tarfile, "data_filter", raising=False)
    archive = tmp_path / "caps.tgz"
    archive.write_bytes(_tar_gz({"cvpr2016_flowers/text_c10/class_00001/image_00001.txt": b"a flower",
                                 "cvpr2016_flowers/embeddings.t7": b"skip me"}))
    dl.safe_extract(archive, tmp_path / "out", only="text_c10")
    got = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert got == ["cvpr2016_flowers/text_c10/class_00001/image_00001.txt"]


def test_prepare_download_offline_prints_the_manual_steps_without_a_traceback(tmp_path, monkeypatch, capsys):
    from data_utils import prepare
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = {k: replace(r, url=f"http://127.0.0.1:{port}/{r.name}") for k, r in dl.DEFAULT_RESOURCES.items()}
    monkeypatch.setattr(dl, "DEFAULT_RESOURCES", dead)  # a server that is not there: the real download fails
    rc = prepare.main(["--download", "--download-dir", str(tmp_path / "oxford102"), "--out", str(tmp_path / "f.h5")])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: ") and "Traceback" not in err
    assert "python -m data_utils.prepare --source" in err and not (tmp_path / "f.h5").exists()
