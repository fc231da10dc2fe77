"""Build the HDF5 cache from an official-layout folder, a base-repo `flowers.hdf5`, or a fresh download.

    python -m data_utils.prepare --source data/oxford102 --out data/flowers.h5
    python -m data_utils.prepare --source flowers.hdf5 --out data/flowers.h5     # aelnouby format
    python -m data_utils.prepare --download --out data/flowers.h5                # needs internet

Idempotent: when the cache already matches its source (fingerprint, schema, image size) nothing is done, and
`--download` downloads nothing when `--out` is already a usable cache (of this schema and image size, whatever
its source): `--force` rebuilds.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from core.config import resolve_data_root
from core.files import OutputError, check_writable

from . import aelnouby, official
from .cache import CACHE_IMAGE_SIZE, SCHEMA_VERSION, read_attrs, write_cache
from .records import DataError


def prepare(source: Path, out: Path, *, force: bool = False, skip_bad: bool = False,
            size: int = CACHE_IMAGE_SIZE, log=print) -> dict:
    """Write `out` from `source` unless it is already up to date. Returns the cache attrs."""
    source, out = Path(source), Path(out)
    if out.is_dir():
        raise DataError(f"{out}: is a folder; name the HDF5 cache file (e.g. {out / 'flowers.h5'})")
    if source.is_dir():
        official.scan(source)  # DataError naming what is missing, before the fingerprint reads the files
        kind, fp = "official", official.fingerprint(source)
        records = official.read_official(source)
    elif source.is_file():
        kind, fp = "aelnouby", aelnouby.fingerprint(source)
        records = aelnouby.read_aelnouby(source)
    else:
        raise DataError(f"{source}: no such folder or file")
    have = read_attrs(out)
    if (not force and have and have.get("source_fingerprint") == fp
            and int(have.get("schema_version", -1)) == SCHEMA_VERSION and int(have.get("image_size", -1)) == size):
        log(f"cache up to date: {out} ({have['n_images']} images, {have['n_captions']} captions)")
        return have
    check_writable(out.parent)  # OutputError before the images are decoded
    t0 = time.time()
    log(f"building {out} from {source} ({kind} format) ...")
    attrs = write_cache(out, records, source_kind=kind, fingerprint=fp, size=size, skip_bad=skip_bad, log=log)
    converted = json.loads(attrs["converted_modes"])
    log(f"wrote {out}: {attrs['n_images']} images, {attrs['n_captions']} captions, {attrs['n_classes']} classes"
        + (f", converted to RGB: {converted}" if converted else "") + f" ({time.time() - t0:.1f}s)")
    return attrs


def ensure_cache(dc, log=print) -> None:
    """dc: DataConfig. Build the HDF5 cache from the data folder when it is missing or stale (idempotent,
    atomic); an existing cache is used as it is when no data folder is named (data.root, $OXFORD102_DIR)."""
    if Path(dc.cache).is_dir():
        raise DataError(f"{dc.cache}: data.cache is a folder; name the HDF5 cache file (e.g. "
                        f"{Path(dc.cache) / 'flowers.h5'})")
    if Path(dc.cache).is_file() and not dc.root and not os.environ.get("OXFORD102_DIR"):
        return
    try:
        root = resolve_data_root(dc.root)
    except FileNotFoundError as e:  # no data folder: a user error like any other DataError
        raise DataError(str(e)) from None
    prepare(root, Path(dc.cache), log=log)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", help="official-layout folder or aelnouby flowers.hdf5 "
                   "(default: $OXFORD102_DIR, else data/oxford102)")
    p.add_argument("--download", action="store_true", help="download the official files first")
    p.add_argument("--download-dir", default="data/oxford102", help="where --download puts the files")
    p.add_argument("--out", default="data/flowers.h5")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images (counted, logged) "
                   "instead of stopping")
    args = p.parse_args(argv)
    try:
        have = read_attrs(Path(args.out)) if Path(args.out).is_file() else None
        if args.download and not args.force and have and int(have.get("schema_version", -1)) == SCHEMA_VERSION \
                and int(have.get("image_size", -1)) == CACHE_IMAGE_SIZE:  # never download over a usable cache
            print(f"cache ready: {args.out} ({have['n_images']} images, {have['source_kind']} source); "
                  "not downloading (--force downloads and rebuilds it)")
            return 0
        if args.download:
            from .download import DownloadError, download_oxford102
            folder = Path(args.download_dir)
            existed = folder.exists()
            try:
                source = download_oxford102(folder)
            except DownloadError as e:  # offline, a server error, a bad archive: what to do by hand, no traceback
                if not existed and folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()  # an empty folder would later read as a data folder
                print(f"error: {e}", file=sys.stderr)
                return 1
        else:
            source = Path(args.source) if args.source else resolve_data_root("")
        prepare(source, Path(args.out), force=args.force, skip_bad=args.skip_bad)
    except (DataError, FileNotFoundError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # killed: `finally` removes temp files
    sys.exit(main())
