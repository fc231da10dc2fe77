"""Image grids with their text, written as PNG: a caption under each row (the sample grids, `app.generate`) and a
label left of each row (eval/figures/real_vs_generated.png). Pillow only, so every layer can draw one."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .files import atomic_write

FONT_SIZE, LINE, MAX_LINES = 11, 14, 3  # px; a caption longer than MAX_LINES lines ends in "..."
INK, PAPER = (20, 20, 20), (255, 255, 255)


def wrap(text: str, width: int, font, max_lines: int = MAX_LINES) -> list[str]:
    """Words of `text` in lines of at most `width` px (a longer word is cut; a newline starts a line), at most
    `max_lines` lines; text past the last line is replaced by "..."."""
    lines, line = [], ""
    for word in text.replace("\n", " \n ").split(" "):
        if len(lines) > max_lines:  # enough to know it is cut
            break
        if word == "\n":
            lines, line = [*lines, line], ""
            continue
        if not word.strip():
            continue
        word = word.strip()
        while font.getlength(word) > width and len(word) > 1:  # a word wider than the line: cut it
            cut = max(1, int(len(word) * width / font.getlength(word)) - 1)
            lines, line = ([*lines, line] if line else lines), ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}".strip()
        if font.getlength(candidate) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    lines += [line] if line else []
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(last + " ...") > width:
            last = last[:-1]
        lines = lines[:max_lines - 1] + [last.rstrip() + " ..."]
    return lines


def to_uint8(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """(..., 3, H, W) floats in value_range -> (..., H, W, 3) uint8."""
    lo, hi = value_range
    x = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def captioned_grid(images: torch.Tensor, captions: list[str] | None = None, labels: list[str] | None = None,
                   value_range: tuple[float, float] = (-1.0, 1.0), padding: int = 2, label_width: int = 150,
                   title: str = "", group: int = 0) -> Image.Image:
    """images (R, K, 3, H, W) in value_range -> an RGB picture of R rows of K images on white: captions[r] (wrapped
    to the row's width) under row r, labels[r] (wrapped to `label_width` px) left of it, `title` above all, and
    (group > 0) a wider gap after every `group` rows."""
    rows, cols, _, h, w = images.shape
    font = ImageFont.load_default(size=FONT_SIZE)
    pixels = to_uint8(images, value_range)
    left = label_width + padding if labels else 0
    width = left + cols * w + (cols + 1) * padding
    text_w = cols * w + (cols - 1) * padding
    caps = [wrap(c, text_w, font) for c in captions] if captions else [[] for _ in range(rows)]
    labs = [wrap(t, label_width - padding, font, max_lines=h // LINE) for t in labels] if labels else None
    heads = wrap(title, width - 2 * padding, font) if title else []
    heights = [h + padding + LINE * len(c) + (4 if c else 0) + (8 if group and (r + 1) % group == 0 and r + 1 < rows else 0)
               for r, c in enumerate(caps)]
    top = padding + LINE * len(heads) + (4 if heads else 0)
    canvas = Image.new("RGB", (width, top + sum(heights)), PAPER)
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(heads):
        draw.text((padding, padding + i * LINE), line, fill=INK, font=font)
    y = top
    for r in range(rows):
        for k in range(cols):
            canvas.paste(Image.fromarray(pixels[r, k]), (left + padding + k * (w + padding), y))
        if labs:
            y0 = y + (h - LINE * len(labs[r])) // 2  # centred beside the row
            for i, line in enumerate(labs[r]):
                draw.text((padding, y0 + i * LINE), line, fill=INK, font=font)
        for i, line in enumerate(caps[r]):
            draw.text((left + padding, y + h + 1 + i * LINE), line, fill=INK, font=font)
        y += heights[r]
    return canvas


def save_picture(picture: Image.Image, path: str | Path) -> Path:
    """Write a PIL picture atomically (its format from the file name's extension)."""
    path = Path(path)
    return atomic_write(path, lambda tmp: picture.save(tmp, format=Image.registered_extensions().get(
        path.suffix.lower(), "PNG")))
