"""What every data source yields: one record per image, with its raw JPEG bytes and captions."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError


class DataError(ValueError):
    """Bad or missing input data; the message names the file, key or value."""


@dataclass
class Record:
    name: str  # "image_00001"
    label: int  # class id 1..102
    captions: list[str]  # raw caption lines, verbatim
    jpeg: bytes  # encoded image as stored by the source
    origin: str  # file (or file:key) the image came from, for error messages


def decode_image(data: bytes, size: int, origin: str) -> tuple[np.ndarray, str]:
    """JPEG bytes -> (size, size, 3) uint8 RGB: shorter side resized to `size`, centre crop.

    Returns the array and the source mode ("RGB", "L", "CMYK", ...) so callers can count conversions.
    Raises DataError naming `origin` when the bytes are not a readable image.
    """
    try:
        img = Image.open(io.BytesIO(data))
        mode = img.mode
        img.draft("RGB", (2 * size, 2 * size))  # let the JPEG decoder downscale cheaply
        img = img.convert("RGB")
        w, h = img.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=2.0)
        left, top = (nw - size) // 2, (nh - size) // 2
        img = img.crop((left, top, left + size, top + size))
        arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{origin}: not a readable image ({e})") from None
    if arr.shape != (size, size, 3):
        raise DataError(f"{origin}: decoded to shape {arr.shape}, expected {(size, size, 3)}")
    return arr, mode
