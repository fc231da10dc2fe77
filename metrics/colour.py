"""Does a generated flower have the colour its caption names? An interpretable check of the seen-class pull.

Captions (Reed et al.) mostly name the petal colour; an unseen-class caption that comes out as the nearest
training class often comes out in that class's colour instead. The rate is computed the same way on the
generated images and on the real photos the captions describe (the reference: what the rules can reach).

Caption: the single colour named, from ``COLOUR_WORDS`` (lower-cased whole words; "dark", "light", "pale",
"bright" ... are ignored, as is any word not in the list, e.g. "green" for leaves / stems); None when none or
several different colours are named ("pink and white petals" -> None).

Image (uint8 (N, 3, H, W), channels RGB, the model's layout): the central region (the middle 3/4 in each
direction: 48x48 of a 64x64 image; Oxford-102 flowers are centred) in HSV (h in degrees, s and v in 0..1),
each pixel classified by ``pixel_colours``:
  - ignored: dark (v < 0.25), grey (s < 0.15 and v < 0.7), green / leaf hues (70 <= h < 170);
  - white: s < 0.15 and v >= 0.7;
  - by hue, for s >= 0.15: red h < 15 or h >= 345 (pale red, s < 0.5 and v >= 0.6: pink),
    orange 15..40 (dark orange, v < 0.5: ignored as brown), yellow 40..70, blue 170..240,
    purple 240..300, pink 300..345;
the dominant colour is the most frequent class among the classified pixels, None if fewer than
``MIN_FLOWER_FRACTION`` of the region's pixels are classified.

The thresholds were set on the real photos of the default run's 25 classes (one random caption each, 916 of
1,744 naming one colour): rate 0.66, chance 1/7; 0.47 on the 5 test classes alone (n=133), where annotators
call the same fritillary purple, pink or red. Purple is the weak colour (0.32: photographed purples fall on
blue or magenta hues), so compare the generated rate with the real reference, never with 1.
"""
from __future__ import annotations

import re

import numpy as np
import torch

__all__ = ["COLOURS", "COLOUR_WORDS", "caption_colour", "pixel_colours", "dominant_colour", "colour_agreement"]

COLOURS = ("red", "pink", "purple", "blue", "yellow", "orange", "white")
COLOUR_WORDS = {
    "red": "red", "reddish": "red", "crimson": "red", "scarlet": "red", "maroon": "red",
    "pink": "pink", "pinkish": "pink", "magenta": "pink", "fuchsia": "pink",
    "purple": "purple", "purplish": "purple", "violet": "purple", "lavender": "purple", "lilac": "purple",
    "blue": "blue", "bluish": "blue",
    "yellow": "yellow", "yellowish": "yellow", "golden": "yellow", "gold": "yellow",
    "orange": "orange", "orangish": "orange",
    "white": "white", "whitish": "white",
}
MIN_FLOWER_FRACTION = 0.05  # of the central region's pixels, else no dominant colour (None)
WHITE_MAX_SAT = 0.15  # below: white (if bright) or grey; at or above: a hue
_WORD = re.compile(r"[a-z]+")


def caption_colour(caption: str) -> str | None:
    """The one colour of COLOURS a caption names (via COLOUR_WORDS), or None if it names none or several."""
    named = {COLOUR_WORDS[w] for w in _WORD.findall(caption.lower()) if w in COLOUR_WORDS}
    return named.pop() if len(named) == 1 else None


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float (..., 3) RGB in 0..1 -> hue in degrees [0, 360), saturation and value in 0..1."""
    mx, mn = rgb.max(-1), rgb.min(-1)
    d = mx - mn
    s = np.where(mx > 0, d / np.maximum(mx, 1e-12), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(d, 1e-12)
    h = np.where(mx == r, (g - b) / safe % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60
    return np.where(d > 0, h, 0.0) % 360, s, mx


def pixel_colours(rgb: np.ndarray) -> np.ndarray:
    """float (..., 3) RGB in 0..1 -> int (...) index into COLOURS, -1 for ignored (dark, grey, green, brown)."""
    h, s, v = _hsv(rgb)
    out = np.full(h.shape, -1, dtype=np.int64)
    chroma = (s >= WHITE_MAX_SAT) & (v >= 0.25)
    idx = {c: i for i, c in enumerate(COLOURS)}
    red = chroma & ((h < 15) | (h >= 345))
    out[red] = idx["red"]
    out[red & (s < 0.5) & (v >= 0.6)] = idx["pink"]
    out[chroma & (h >= 15) & (h < 40) & (v >= 0.5)] = idx["orange"]
    out[chroma & (h >= 40) & (h < 70)] = idx["yellow"]
    out[chroma & (h >= 170) & (h < 240)] = idx["blue"]
    out[chroma & (h >= 240) & (h < 300)] = idx["purple"]
    out[chroma & (h >= 300) & (h < 345)] = idx["pink"]
    out[(s < WHITE_MAX_SAT) & (v >= 0.7)] = idx["white"]
    return out


def _central(images) -> np.ndarray:
    """uint8 (N, 3, H, W) array or tensor -> float (N, h, w, 3) in 0..1: the middle 3/4 in each direction."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"images must be uint8 RGB of shape (N, 3, H, W), got {x.shape}")
    h, w = x.shape[2], x.shape[3]
    c = x[:, :, h // 8:h - h // 8, w // 8:w - w // 8]
    return np.moveaxis(c, 1, -1).astype(np.float64) / 255.0


def dominant_colour(images) -> list[str | None]:
    """uint8 RGB (N, 3, H, W) -> the most frequent pixel colour of each image's central region (module
    docstring), None where under MIN_FLOWER_FRACTION of its pixels have a flower colour."""
    cls = pixel_colours(_central(images)).reshape(len(images), -1)
    out = []
    for row in cls:
        counts = np.bincount(row[row >= 0], minlength=len(COLOURS))
        out.append(COLOURS[int(counts.argmax())] if counts.sum() >= MIN_FLOWER_FRACTION * len(row) else None)
    return out


def colour_agreement(captions, images) -> dict:
    """Share of the captions naming exactly one colour whose image (uint8 RGB (N, 3, H, W), one per caption) has
    that dominant colour: {"value", "n", "per_colour": {colour: {"n", "agreed"}}}.

    Raises ValueError when no caption names exactly one colour (or the lengths differ)."""
    captions = [str(c) for c in captions]
    if len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images")
    named = [(i, c) for i, c in enumerate(map(caption_colour, captions)) if c is not None]
    if not named:
        raise ValueError("no caption names exactly one colour")
    keep = [i for i, _ in named]
    dom = dominant_colour(images[torch.as_tensor(keep)] if isinstance(images, torch.Tensor)
                          else np.asarray(images)[keep])
    per = {c: {"n": 0, "agreed": 0} for c in COLOURS}
    for (_, c), d in zip(named, dom):
        per[c]["n"] += 1
        per[c]["agreed"] += int(d == c)
    agreed = sum(p["agreed"] for p in per.values())
    return {"value": agreed / len(named), "n": len(named), "per_colour": {c: p for c, p in per.items() if p["n"]}}
