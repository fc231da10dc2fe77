"""The one HDF5 cache every run reads. Schema version 1:

    /images          (N, 72, 72, 3) uint8  RGB; shorter side resized to 72 px (bicubic), centre-cropped.
                                           64x64 training crops + flips are taken on the fly.
    /labels          (N,) int16            Oxford-102 class id, 1..102
    /names           (N,) utf-8 str        "image_00001", sorted
    /captions        (N, C) utf-8 str      raw caption lines, verbatim; C = 10 for the official layout;
                                           "" pads images with fewer captions (aelnouby source: <= 5)
    /caption_counts  (N,) int8             number of non-empty captions per image
    attrs: schema_version, schema, source_kind ("official" | "aelnouby"), source_fingerprint,
           image_size, n_images, n_captions, n_classes, converted_modes (JSON), skipped (JSON)

Written atomically (temp file + rename), so a cache file that exists is always complete.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from core.files import atomic_write

from .records import DataError, Record, decode_image

SCHEMA_VERSION = 1
CACHE_IMAGE_SIZE = 72
SCHEMA_DOC = __doc__


@dataclass
class CacheData:
    images: np.ndarray  # (N, S, S, 3) uint8
    labels: np.ndarray  # (N,) int64
    names: list[str]
    captions: list[list[str]]  # N lists of non-empty raw captions


def write_cache(out: Path, records: Iterable[Record], *, source_kind: str, fingerprint: str,
                size: int = CACHE_IMAGE_SIZE, skip_bad: bool = False, log=print) -> dict:
    """Decode every record and write the cache atomically. Returns the attrs written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    images, labels, names, captions = [], [], [], []
    modes: dict[str, int] = {}
    skipped: list[str] = []
    for rec in records:
        try:
            arr, mode = decode_image(rec.jpeg, size, rec.origin)
        except DataError as e:
            if not skip_bad:
                raise
            skipped.append(str(e))
            log(f"skipping: {e}")
            continue
        if mode != "RGB":
            modes[mode] = modes.get(mode, 0) + 1
        images.append(arr)
        labels.append(rec.label)
        names.append(rec.name)
        captions.append(rec.captions)
    if not images:
        raise DataError("no images were read from the source")
    width = max(len(c) for c in captions)
    cap = np.array([c + [""] * (width - len(c)) for c in captions], dtype=object)
    attrs = {
        "schema_version": SCHEMA_VERSION, "schema": SCHEMA_DOC, "source_kind": source_kind,
        "source_fingerprint": fingerprint, "image_size": size, "n_images": len(images),
        "n_captions": int(sum(len(c) for c in captions)), "n_classes": len(set(labels)),
        "converted_modes": json.dumps(modes), "skipped": json.dumps(skipped),
    }

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("images", data=np.stack(images), chunks=(1, size, size, 3))
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.int16))
            f.create_dataset("names", data=np.array(names, dtype=object), dtype=h5py.string_dtype())
            f.create_dataset("captions", data=cap, dtype=h5py.string_dtype())
            f.create_dataset("caption_counts", data=np.array([len(c) for c in captions], dtype=np.int8))
            f.attrs.update(attrs)
    atomic_write(out, write)
    return attrs


def read_attrs(path: Path) -> dict | None:
    """The cache's attrs, or None when the file is absent or unreadable (so it gets rebuilt)."""
    try:
        with h5py.File(path, "r") as f:
            return dict(f.attrs)
    except (OSError, FileNotFoundError):
        return None


def load_cache(path: Path, classes: Sequence[int] | None = None) -> CacheData:
    """Read the images of `classes` (all when None) into memory as uint8 arrays. DataError (one line, naming the
    file) for a missing, truncated, corrupt or out-of-date cache."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: cache not found; build it with `python -m data_utils.prepare --out {path}`")
    try:
        return _read_cache(path, classes)
    except OSError as e:  # h5py: not an HDF5 file, truncated, unreadable chunk
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: not a readable HDF5 cache (truncated or corrupt: {reason}); rebuild it with "
                        f"`python -m data_utils.prepare --force --out {path}`") from None


def _read_cache(path: Path, classes: Sequence[int] | None) -> CacheData:
    with h5py.File(path, "r") as f:
        version = int(f.attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            raise DataError(f"{path}: cache schema version {version}, this code reads {SCHEMA_VERSION}; "
                            "rebuild it with `python -m data_utils.prepare`")
        for key in ("images", "labels", "names", "captions", "caption_counts"):
            if key not in f:
                raise DataError(f"{path}: dataset '{key}' missing; rebuild the cache")
        labels = f["labels"][:].astype(np.int64)
        keep = np.ones(labels.shape, bool) if classes is None else np.isin(labels, list(classes))
        if classes is not None:
            absent = sorted(set(classes) - set(labels[keep].tolist()))
            if absent:
                raise DataError(f"{path}: no images of class(es) {absent} in the cache")
        idx = np.flatnonzero(keep)
        images = f["images"][:][idx]  # one contiguous read, then select: faster than fancy h5 indexing
        names = [n.decode() if isinstance(n, bytes) else n for n in f["names"][:][idx]]
        counts = f["caption_counts"][:][idx]
        raw = f["captions"][:][idx]
    caps = [[(c.decode() if isinstance(c, bytes) else c) for c in row[:n]] for row, n in zip(raw, counts)]
    return CacheData(images=images, labels=labels[idx], names=names, captions=caps)
