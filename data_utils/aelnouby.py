"""Reader for the `flowers.hdf5` file of the base repo (aelnouby/Text-to-Image-Synthesis).

Layout: groups `train`, `valid`, `test`; one sub-group per (image, caption), e.g. `image_00001_0`, with

    name        scalar string   "image_00001"
    img         np.void         the original JPEG bytes
    embeddings  (1024,) float   Reed's pretrained char-CNN-RNN embedding  -> IGNORED (pretrained)
    class       scalar string   "class_00001"
    txt         scalar vlen str one caption

The base repo's converter kept 5 captions per image drawn *with replacement*, so an image has at most
5 distinct captions here; duplicates are dropped. The pretrained `embeddings` are never read.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from .records import DataError, Record

SPLITS = ("train", "valid", "test")
REQUIRED = ("name", "img", "class", "txt")


def _text(value) -> str:
    value = value[()] if hasattr(value, "shape") else value
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _class_id(raw: str, where: str) -> int:
    digits = raw.strip().rsplit("_", 1)[-1]
    if not digits.isdigit() or not 1 <= int(digits) <= 102:
        raise DataError(f"{where}/class: expected 'class_XXXXX' with an id in 1..102, got {raw!r}")
    return int(digits)


def scan(path: Path) -> dict[str, dict]:
    """name -> {"label", "captions", "key"} after checking every entry has the required fields."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from None
    images: dict[str, dict] = {}
    with f:
        groups = [s for s in SPLITS if s in f]
        if not groups:
            raise DataError(f"{path}: none of the groups {SPLITS} found (keys: {list(f.keys())})")
        for split in groups:
            for key in sorted(f[split].keys()):
                ex, where = f[split][key], f"{path}:{split}/{key}"
                missing = [k for k in REQUIRED if k not in ex]
                if missing:
                    raise DataError(f"{where}: missing field(s) {missing}")
                name = _text(ex["name"])
                label = _class_id(_text(ex["class"]), where)
                entry = images.setdefault(name, {"label": label, "captions": [], "key": f"{split}/{key}"})
                if entry["label"] != label:
                    raise DataError(f"{where}: class {label} disagrees with class {entry['label']} of {name}")
                caption = _text(ex["txt"]).strip()
                if caption and caption not in entry["captions"]:
                    entry["captions"].append(caption)
    return images


def fingerprint(path: Path) -> str:
    st = Path(path).stat()
    return hashlib.sha256(f"{Path(path).name}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()


def read_aelnouby(path: Path) -> Iterator[Record]:
    """Yield one Record per distinct image name (sorted), captions de-duplicated."""
    images = scan(Path(path))
    with h5py.File(path, "r") as f:
        for name in sorted(images):
            info = images[name]
            raw = f[info["key"]]["img"][()]
            data = raw.tobytes() if isinstance(raw, (np.void, np.ndarray)) else bytes(raw)
            yield Record(name=name, label=info["label"], captions=info["captions"], jpeg=data,
                         origin=f"{path}:{info['key']}/img")
