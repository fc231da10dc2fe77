"""What inference needs, in one place: networks rebuilt from a checkpoint, text-only sampling, image embeddings.

At test time the generator receives noise z, the text encoding T(caption) (the mean of conditioning
augmentation) and, as source representation, the text encoder's prior r = P(T(caption)): the representation the
source encoder would most likely give an image fitting the caption. No image is needed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.config import Config, check_truncation, from_dict
from core.io import BEST_THEN_LAST, load_checkpoint
from data_utils.augment import center_crop, to_float, to_uint8
from data_utils.text import SPECIALS, Vocab, tokenize

from .build import Networks, build_networks


def load_networks(ckpt: dict, device="cpu", ema: bool = True, cfg: Config | None = None) -> Networks:
    """The four networks of a loaded checkpoint, on `device`, in eval mode; the generator with its EMA weights
    (the ones to sample from), or with ema=False its training weights (the ones the GAN step trains).
    cfg: the checkpoint's config already parsed (else parsed here)."""
    cfg = from_dict(ckpt["config"]) if cfg is None else cfg
    nets = build_networks(cfg.model, len(ckpt["vocab"]))
    for name, m in nets.items():
        m.load_state_dict(ckpt["networks"][name])
    if ema:
        nets.generator.load_state_dict(ckpt["g_ema"])
    nets.to(device)
    for _, m in nets.items():
        m.eval()
    return nets


def load_models(checkpoint: str | Path, device="cpu"):
    """A checkpoint file or run folder (its best.pt, else last.pt) -> (networks, vocab, config, checkpoint)."""
    ckpt = load_checkpoint(checkpoint, map_location=device, prefer=BEST_THEN_LAST)
    cfg = from_dict(ckpt["config"])
    return load_networks(ckpt, device, cfg=cfg), Vocab(ckpt["vocab"]), cfg, ckpt


def sample_noise(*shape: int, seed: int, truncation: float = 1.0) -> torch.Tensor:
    """Seeded generator noise of `shape`: truncation * N(0, I); truncation 1 is the training distribution."""
    check_truncation(truncation)
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * truncation


@torch.no_grad()
def generate_from_tokens(text_encoder, generator, tokens: torch.Tensor, lengths: torch.Tensor,
                         z: torch.Tensor, device, per_caption_noise: bool = False,
                         rep: torch.Tensor | None = None) -> torch.Tensor:
    """Text-only generation. tokens (C, L), lengths (C,), z (K, Z) shared by all captions, or
    (C, K, Z) with per_caption_noise -> images (C, K, 3, 64, 64) in [-1, 1]. rep (C, D), optional: source
    representations to use instead of the text prior's guesses (e.g. those of the captions' own photos)."""
    was_training = text_encoder.training, generator.training
    text_encoder.eval(), generator.eval()
    t = text_encoder(tokens.to(device), lengths.to(device))  # (C, T)
    r = text_encoder.predict_representation(t) if rep is None else rep.to(device)  # (C, D)
    c = generator.condition(t)[1]  # the mean of conditioning augmentation: deterministic per caption
    n_cap = t.shape[0]
    z = z.to(device)
    if not per_caption_noise:
        z = z.unsqueeze(0).expand(n_cap, -1, -1)  # (C, K, Z)
    k = z.shape[1]
    rep = lambda x: x.unsqueeze(1).expand(-1, k, -1).reshape(n_cap * k, -1)  # noqa: E731  (C*K, ...)
    out = generator.synthesize(z.reshape(n_cap * k, -1), rep(c), rep(r))
    text_encoder.train(was_training[0]), generator.train(was_training[1])
    return out.view(n_cap, k, *out.shape[1:])


@torch.no_grad()
def generate_uint8(nets: Networks, tokens, lengths, k: int, noise_dim: int, seed: int, device, batch: int = 128,
                   truncation: float = 1.0, rep: torch.Tensor | None = None) -> torch.Tensor:
    """tokens (C, L), lengths (C,) -> uint8 (C * K, 3, 64, 64) on CPU, K samples per caption (seeded noise), in
    batches; rep (C, D): source representations instead of the text prior's guesses."""
    z = sample_noise(len(tokens), k, noise_dim, seed=seed, truncation=truncation)
    out = [generate_from_tokens(nets.text_encoder, nets.generator, tokens[i:i + batch], lengths[i:i + batch],
                                z[i:i + batch], device, per_caption_noise=True,
                                rep=None if rep is None else rep[i:i + batch]).flatten(0, 1).cpu()
           for i in range(0, len(tokens), batch)]
    return to_uint8(torch.cat(out)) if out else torch.zeros((0, 3, 64, 64), dtype=torch.uint8)


@torch.no_grad()
def embed_images(encoder, images: torch.Tensor, size: int, device, batch_size: int = 256,
                 whitened: bool = True) -> np.ndarray:
    """uint8 (N, 3, H, W) -> (N, D) float32 representations of the centre crops; whitened=False: before the
    encoder's whitening (the space shared with the text encoder's caption embeddings)."""
    encoder.eval()
    fn = encoder if whitened else encoder.represent
    out = [fn(to_float(center_crop(images[i:i + batch_size], size).to(device))).float().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def embed_all_images(encoder, data, size: int, device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every image of the run's classes (data.all_images(): train, validation and test sets) -> (features (N, D)
    from `embed_images`, labels (N,), is_test_class (N,) bool)."""
    allset = data.all_images()
    labels = allset.labels.numpy()
    return embed_images(encoder, allset.images, size, device), labels, np.isin(labels, data.test_classes)


MAX_IMAGES_PER_CAPTION = 64  # generate_captions: one grid row per caption, drawn in batches of at most BATCH images
MAX_CAPTIONS = 64
BATCH = 64


def shorten(caption: str, words: int = 12) -> str:
    """A caption as it is echoed in messages: its first `words` words, then how many more there are."""
    parts = caption.split()
    return caption if len(parts) <= words else " ".join(parts[:words]) + f" ... (+{len(parts) - words} words)"


def caption_notes(vocab, captions: list[str], max_len: int) -> list[list[str]]:
    """What the text encoder will not see of each caption: unknown words (read as <unk>; the first 10 named) and
    words past max_len."""
    notes = []
    for c in captions:
        row, unknown, n_words = [], vocab.unknown_words(c), len(tokenize(c))
        if unknown:
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            row.append(f"not in the run's vocabulary, read as <unk>: {', '.join(unknown[:10])}{more}")
        if n_words > max_len:
            row.append(f"cut to its first {max_len} of {n_words} words (data.max_caption_len)")
        notes.append(row)
    return notes


def read_photo(path: str | Path) -> torch.Tensor:
    """An image file -> uint8 (3, 72, 72), prepared as the data cache prepares every photo (shorter side resized
    to 72 px, centre crop); DataError (a ValueError) naming the file when it is missing or not an image."""
    from data_utils.cache import CACHE_IMAGE_SIZE
    from data_utils.records import DataError, decode_image
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--photo {path}: no such file")
    arr, _ = decode_image(path.read_bytes(), CACHE_IMAGE_SIZE, str(path))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()  # decode_image may return a read-only view


def generate_captions(checkpoint, captions: list[str], n: int = 8, seed: int = 0, device="cpu",
                      truncation: float | None = None, log=None, photo: str | Path | None = None) -> torch.Tensor:
    """captions -> images (len(captions), n, 3, 64, 64) in [-1, 1]; truncation None = the run's eval.truncation.
    photo: an image file whose source representation r = E(photo) the generator gets for every caption (the
    second test-time route), instead of the text prior's guess from each caption.

    A caption of fewer than 2 words, or with no word in the run's vocabulary (the training classes' captions),
    raises ValueError, as do n outside 1..MAX_IMAGES_PER_CAPTION and more than MAX_CAPTIONS captions; the images
    are drawn in batches of at most BATCH. `log`, when given, is called with one line per caption that has unknown
    or cut words."""
    if not 1 <= n <= MAX_IMAGES_PER_CAPTION:
        raise ValueError(f"n must be at least 1 (images per caption), got {n}" if n < 1 else
                         f"n = {n} images per caption: at most {MAX_IMAGES_PER_CAPTION} (one grid row each); draw "
                         "more with other seeds")
    if len(captions) > MAX_CAPTIONS:
        raise ValueError(f"{len(captions)} captions: at most {MAX_CAPTIONS} (one grid row each)")
    photo_img = read_photo(photo) if photo is not None else None  # a bad file is refused before any loading
    nets, vocab, cfg, _ = load_models(checkpoint, device)
    tokens, lengths = vocab.encode(captions, cfg.data.max_caption_len)
    empty = [c for c, n_tok in zip(captions, lengths.tolist()) if n_tok == 0]
    if empty:
        raise ValueError(f"caption(s) with fewer than 2 words cannot be encoded: {[shorten(c) for c in empty]}")
    blind = [shorten(c) for c in captions if all(w not in vocab.stoi for w in tokenize(c))]
    if blind:
        n_words = len(vocab) - len(SPECIALS)
        raise ValueError(f"no word of caption(s) {blind} is in the run's vocabulary ({n_words} words from the "
                         "training classes' captions), so the text encoder would see only <unk>")
    if log:
        for i, (c, row) in enumerate(zip(captions, caption_notes(vocab, captions, cfg.data.max_caption_len))):
            if row:
                log(f"caption {i} ({shorten(c)!r}): {'; '.join(row)}")
    psi = cfg.eval.truncation if truncation is None else truncation
    z = sample_noise(n, cfg.model.noise_dim, seed=seed, truncation=psi)
    rep = None
    if photo_img is not None:  # (1, D) -> one row per caption
        r = torch.from_numpy(embed_images(nets.encoder, photo_img[None], cfg.data.image_size, device))
        rep = r.expand(len(captions), -1)
    step = max(1, BATCH // n)  # captions per batch: at most BATCH images in one generator call
    return torch.cat([generate_from_tokens(nets.text_encoder, nets.generator, tokens[i:i + step],
                                           lengths[i:i + step], z, device,
                                           rep=None if rep is None else rep[i:i + step]).cpu()
                      for i in range(0, len(captions), step)])
