"""Download Oxford-102 Flowers and Reed et al.'s captions into the official layout.

The result is a folder that ``python -m data_utils.prepare --source FOLDER`` reads::

    FOLDER/jpg/image_00001.jpg ...                        (from 102flowers.tgz)
    FOLDER/imagelabels.mat, FOLDER/setid.mat
    FOLDER/text_c10/class_00001/image_06734.txt ...       (from cvpr2016_flowers.tar.gz)
    FOLDER/downloads/                                     (the archives, kept for re-runs)

CLI: ``python -m data_utils.download --out DIR [--mirror KEY=URL ...]``. HTTP uses only
the standard library; downloads resume from ``<file>.part`` and are md5-checked before an
atomic rename; archives are extracted safely into a temporary folder moved into place.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import html.parser
import http.client
import http.cookiejar
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Callable

VGG_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
DRIVE_ID = "0B0ywwgffWnLLcms2WWJQRFNSWXM"  # Reed et al., cvpr2016_flowers.tar.gz
# The resource key comes from the public share link; Drive needs it for old file ids.
DRIVE_URL = f"https://drive.google.com/uc?export=download&id={DRIVE_ID}&resourcekey=0-Av8zFbeDDvNcF1sSjDR32w"
NUM_CLASSES = 102
USER_AGENT = "Mozilla/5.0 (oxford102-downloader; python-urllib)"


@dataclass(frozen=True)
class Resource:
    """One file to fetch: its file name on disk, its URL and its md5 (None: unknown)."""

    name: str
    url: str
    md5: str | None


DEFAULT_RESOURCES: dict[str, Resource] = {
    "images": Resource("102flowers.tgz", VGG_URL + "102flowers.tgz", "52808999861908f626f3c1f4e79d11fa"),
    "labels": Resource("imagelabels.mat", VGG_URL + "imagelabels.mat", "e0620be6f572b9609742df49c70aed4d"),
    "setid": Resource("setid.mat", VGG_URL + "setid.mat", "a5357ecc9cb78c4bef273ce3793fc85c"),
    # No published checksum is known; the extracted text_c10/ is checked instead.
    "captions": Resource("cvpr2016_flowers.tar.gz", DRIVE_URL, None),
}


class DownloadError(RuntimeError):
    """A file could not be downloaded, verified or extracted."""


def manual_instructions(dest: str = "DIR") -> str:
    """How to assemble the official-layout folder by hand (printed when offline)."""
    lines = ["To get the files by hand, download them on a machine with internet access:"]
    for r in DEFAULT_RESOURCES.values():
        lines.append(f"  {r.name}: {r.url}" + (f"  (md5 {r.md5})" if r.md5 else ""))
    lines += [
        f"then put imagelabels.mat and setid.mat in {dest}/, extract 102flowers.tgz there "
        f"(giving {dest}/jpg/), and copy cvpr2016_flowers/text_c10/ from the captions archive "
        f"to {dest}/text_c10/. `python -m data_utils.prepare --source {dest}` reads a folder in "
        "this official layout. Or re-run with `--mirror KEY=URL` to use another server.",
    ]
    return "\n".join(lines)


def file_md5(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _ConfirmPage(html.parser.HTMLParser):
    """Collects the first form (action + named inputs) of a Drive interstitial page."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._in_form = a.get("action", ""), True
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def drive_confirm_url(page: str, base: str) -> str | None:
    """URL to re-request after Google Drive's "can't scan for viruses" page, or None."""
    p = _ConfirmPage()
    p.feed(page)
    if p.action is not None and ("confirm" in p.fields or "confirm=" in p.action):
        url, extra = urllib.parse.urljoin(base, p.action), p.fields
    elif m := re.search(r"confirm=([0-9A-Za-z_-]+)", page):  # older pages: a link with the token
        url, extra = base, {"confirm": m.group(1)}
    else:
        return None
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query)) | extra
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _progress_bar(enabled: bool) -> contextlib.AbstractContextManager:
    if not enabled:
        return contextlib.nullcontext()
    from rich import progress as rp
    return rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(), rp.DownloadColumn(),
                       rp.TransferSpeedColumn(), rp.TimeRemainingColumn())


def download_file(url: str, dest: Path, md5: str | None = None, *, chunk_size: int = 1 << 16,
                  progress: bool = True, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` (resumable via ``dest.part``), check md5, rename atomically.

    Skips the download when ``dest`` exists with the right checksum (or any ``dest`` when
    ``md5`` is None). Follows Google Drive confirm pages. Raises DownloadError.
    """
    dest = Path(dest)
    if dest.is_file():
        if md5 is None or file_md5(dest) == md5:
            return dest
        dest.unlink()  # stale or corrupt: fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    for _ in range(5):  # the URL itself, then confirm pages / range restarts
        offset = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": USER_AGENT} | ({"Range": f"bytes={offset}-"} if offset else {})
        try:
            resp = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:  # nothing left to send: part is complete or bogus
                if md5 is not None and file_md5(part) == md5:
                    break
                part.unlink()
                continue
            raise DownloadError(f"{url} answered HTTP {e.code} {e.reason} for {dest.name}") from e
        except (OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise DownloadError(f"Could not reach {url} ({reason}). This machine appears to be "
                                f"offline or the server is unreachable.\n{manual_instructions()}") from e
        with resp:
            if resp.headers.get_content_type() == "text/html":
                nxt = drive_confirm_url(resp.read(1 << 20).decode("utf-8", "replace"), resp.geturl())
                if nxt is None:
                    raise DownloadError(f"{url} returned an HTML page instead of {dest.name} (Drive "
                                        f"quota exceeded or file not shared?).\n{manual_instructions()}")
                url = nxt
                continue
            status = getattr(resp, "status", None)
            if status == 206:
                m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:  # unexpected range: start over
                    part.unlink()
                    continue
            else:  # 200 (or file://): the server sent the whole file, restart from zero
                offset = 0
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length else None
            try:
                with open(part, "ab" if offset else "wb") as f, _progress_bar(progress) as bar:
                    task = bar.add_task(dest.name, total=total, completed=offset) if bar else None
                    while chunk := resp.read(chunk_size):
                        f.write(chunk)
                        if bar:
                            bar.update(task, advance=len(chunk))
            except (OSError, http.client.HTTPException) as e:
                raise DownloadError(f"Download of {dest.name} from {url} was interrupted ({e}); "
                                    f"re-run to resume from {part.name}.") from e
        break
    else:
        raise DownloadError(f"Could not download {dest.name} from {url}: too many confirm pages or restarts.")
    if md5 is not None and (actual := file_md5(part)) != md5:
        part.unlink()
        raise DownloadError(f"Checksum mismatch for {dest.name} (from {url}): expected md5 {md5}, "
                            f"got {actual}. The partial file was deleted; re-run to download again.")
    os.replace(part, dest)
    return dest


def safe_extract(archive: Path, target: Path, only: str | None = None) -> None:
    """Extract ``archive`` into ``target``, rejecting absolute or ``..`` member paths.

    Links and special files are skipped; with ``only``, just members that have a path
    component equal to it (e.g. ``"text_c10"``) are extracted.
    """
    with tarfile.open(archive) as tar:
        members = []
        for m in tar.getmembers():
            path = PurePosixPath(m.name.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", m.name):
                raise DownloadError(f"Refusing to extract {archive.name}: unsafe member path {m.name!r}")
            if (m.isfile() or m.isdir()) and (only is None or only in path.parts):
                members.append(m)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, members=members, filter="data")
        else:  # Python without extraction filters: members were checked above
            tar.extractall(target, members=members)


def _extract_dir(archive: Path, dest_dir: Path, dirname: str, check: Callable[[Path], None]) -> Path:
    """Extract the ``dirname`` folder of ``archive`` and move it to ``dest_dir/dirname`` when complete."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_dir))
    try:
        safe_extract(archive, tmp, only=dirname)
        found = sorted((p for p in tmp.rglob(dirname) if p.is_dir()), key=lambda p: len(p.parts))
        if not found:
            raise DownloadError(f"{archive.name} contains no {dirname}/ folder")
        check(found[0])
        os.replace(found[0], dest_dir / dirname)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir / dirname


def download_oxford102(dest_dir: Path, *, base_urls: dict[str, str] | None = None, progress: bool = True,
                       resources: dict[str, Resource] | None = None,
                       expected_classes: int | None = None) -> Path:
    """Download and extract everything into ``dest_dir`` (official layout) and return it.

    ``base_urls`` overrides a resource's URL by key ("images", "labels", "setid",
    "captions"); ``resources`` replaces DEFAULT_RESOURCES (URLs and md5s), and
    ``expected_classes`` the number of text_c10 class folders required (default 102).
    Folders already in place (``jpg/``, ``text_c10/``) are not downloaded again.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    res = dict(resources or DEFAULT_RESOURCES)
    for key, url in (base_urls or {}).items():
        if key not in res:
            raise ValueError(f"unknown resource {key!r}; expected one of {sorted(res)}")
        res[key] = replace(res[key], url=url)
    n_classes = NUM_CLASSES if expected_classes is None else expected_classes
    for stale in dest_dir.glob(".extract-*"):  # left by an interrupted extraction
        shutil.rmtree(stale, ignore_errors=True)

    def check_jpg(folder: Path) -> None:
        if not any(folder.glob("image_*.jpg")):
            raise DownloadError(f"{res['images'].name} contains no jpg/image_*.jpg files")

    def check_captions(folder: Path) -> None:
        found = len([p for p in folder.glob("class_*") if p.is_dir()])
        if found != n_classes:
            raise DownloadError(f"{res['captions'].name}: text_c10/ has {found} class folders, "
                                f"expected {n_classes}; the archive is incomplete or not Reed et al.'s.")

    for key in ("labels", "setid"):
        download_file(res[key].url, dest_dir / res[key].name, res[key].md5, progress=progress)
    for key, dirname, check in (("images", "jpg", check_jpg), ("captions", "text_c10", check_captions)):
        if (dest_dir / dirname).is_dir():
            continue
        r = res[key]
        archive = download_file(r.url, dest_dir / "downloads" / r.name, r.md5, progress=progress)
        _extract_dir(archive, dest_dir, dirname, check)
    return dest_dir


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m data_utils.download --out DIR [--mirror KEY=URL ...]``."""
    parser = argparse.ArgumentParser(prog="python -m data_utils.download", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="destination folder (official layout)")
    parser.add_argument("--mirror", action="append", default=[], metavar="KEY=URL",
                        help=f"use URL for a resource; KEY is one of {', '.join(DEFAULT_RESOURCES)}")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    mirrors: dict[str, str] = {}
    for item in args.mirror:
        key, sep, url = item.partition("=")
        if not sep or key not in DEFAULT_RESOURCES:
            parser.error(f"--mirror expects KEY=URL with KEY in {', '.join(DEFAULT_RESOURCES)}, got {item!r}")
        mirrors[key] = url
    try:
        out = download_oxford102(args.out, base_urls=mirrors, progress=not args.no_progress)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Oxford-102 is ready in {out}; next: python -m data_utils.prepare --source {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
