"""Reader for the official Oxford-102 layout (what the VGG and Reed et al. downloads unpack to):

    ROOT/jpg/image_00001.jpg ...            8,189 images
    ROOT/imagelabels.mat                    `labels`: 1 x 8189, class ids 1..102
    ROOT/text_c10/class_00001/image_06734.txt  10 captions per image, one per line

The structure is checked before any image is decoded, so a wrong folder fails in a second.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.io

from .records import DataError, Record

CAPTIONS_PER_IMAGE = 10
log = logging.getLogger(__name__)


def read_labels(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: labels file not found")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises several types for corrupt files
        raise DataError(f"{path}: cannot read MATLAB file ({e})") from None
    if "labels" not in mat:
        raise DataError(f"{path}: no 'labels' key (keys: {[k for k in mat if not k.startswith('__')]})")
    labels = np.asarray(mat["labels"]).reshape(-1).astype(np.int64)
    if labels.size and (labels.min() < 1 or labels.max() > 102):
        raise DataError(f"{path}: labels must be in 1..102, found {labels.min()}..{labels.max()}")
    return labels


def read_captions(path: Path) -> list[str]:
    """The caption lines of one image, verbatim (junk lines such as '{}' are kept; the tokenizer handles them)."""
    if not path.is_file():
        raise DataError(f"{path}: caption file missing")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from None
    lines = [ln.strip() for ln in lines if ln.strip()]
    if len(lines) < CAPTIONS_PER_IMAGE:
        raise DataError(f"{path}: {len(lines)} caption lines, expected {CAPTIONS_PER_IMAGE}")
    return lines[:CAPTIONS_PER_IMAGE]


def scan(root: Path) -> list[tuple[str, int, Path, Path]]:
    """Check the layout and return (name, label, jpg path, caption path) for every image."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    jpg_dir, text_dir = root / "jpg", root / "text_c10"
    for d in (jpg_dir, text_dir):
        if not d.is_dir():
            raise DataError(f"{d}: folder missing (expected the official Oxford-102 layout)")
    labels = read_labels(root / "imagelabels.mat")
    jpgs = sorted(jpg_dir.glob("image_*.jpg"))
    if not jpgs:
        raise DataError(f"{jpg_dir}: no image_XXXXX.jpg files")
    entries = []
    for p in jpgs:
        idx = int(p.stem.split("_")[1])  # image_00042 -> 42, 1-based index into labels
        if idx > labels.size:
            raise DataError(f"{root / 'imagelabels.mat'}: has {labels.size} labels but {p.name} needs index {idx}")
        label = int(labels[idx - 1])
        entries.append((p.stem, label, p, text_dir / f"class_{label:05d}" / f"{p.stem}.txt"))
    if len(jpgs) != labels.size:  # a subset (fixture) is fine, but never silently
        log.warning("%s: %d labels but %d images; %d images absent from %s",
                    root / "imagelabels.mat", labels.size, len(jpgs), labels.size - len(jpgs), jpg_dir)
    return entries


def fingerprint(root: Path) -> str:
    """Cheap identity of the source (names, sizes, mtimes), used to skip an up-to-date cache."""
    h = hashlib.sha256()
    root = Path(root)
    files = [root / "imagelabels.mat", *sorted((root / "jpg").glob("image_*.jpg")),
             *sorted((root / "text_c10").glob("class_*/image_*.txt"))]
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read_official(root: Path) -> Iterator[Record]:
    """Yield one Record per image; raises DataError naming the file on any structural problem."""
    entries = scan(Path(root))
    captions = {name: read_captions(txt) for name, _, _, txt in entries}  # all checked before decoding
    for name, label, jpg, _ in entries:
        yield Record(name=name, label=label, captions=captions[name], jpeg=jpg.read_bytes(), origin=str(jpg))
