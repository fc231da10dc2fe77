"""Generation from text alone, and a command that renders your own captions to an image grid.

    python -m training.generate --checkpoint runs/<id>/checkpoints/best.pt \
        --caption "this flower has large pink petals with a yellow center" --caption "..." -n 8

At test time the generator receives: noise z, the text encoding T(caption) (conditioning-augmented),
and as source representation the text encoder's *prior* r = P(T(caption)) — the representation the
source encoder would most likely give an image fitting the caption. No image is needed.

Words outside the run's vocabulary are read as <unk> and named; a caption with no known word is refused (exit 2).

`--truncation PSI` (the "truncation trick"): the noise is drawn as PSI * z, z ~ N(0, I), pulling samples
towards the generator's typical image for the caption — more faithful, less varied (README, Results).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.utils import save_image

from data_utils.text import SPECIALS, tokenize
from training.config import check_truncation


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


def load_models(checkpoint: str | Path, device="cpu"):
    """Rebuild (text encoder, EMA generator, source encoder, vocab, config) from a checkpoint."""
    from data_utils.text import Vocab

    from .checkpoint import load_checkpoint
    from .config import from_dict
    from .networks import build_networks
    ckpt = load_checkpoint(Path(checkpoint), map_location=device)
    cfg, vocab = from_dict(ckpt["config"]), Vocab(ckpt["vocab"])
    nets = build_networks(cfg.model, len(vocab))
    for name, m in nets.items():
        m.load_state_dict(ckpt["networks"][name])
    nets.generator.load_state_dict(ckpt["g_ema"])  # the EMA weights are the ones to sample from
    nets.to(device)
    for _, m in nets.items():
        m.eval()
    return nets, vocab, cfg, ckpt


def caption_notes(vocab, captions: list[str], max_len: int) -> list[list[str]]:
    """What the text encoder will not see of each caption: unknown words (read as <unk>) and words past max_len."""
    notes = []
    for c in captions:
        row, unknown, n_words = [], vocab.unknown_words(c), len(tokenize(c))
        if unknown:
            row.append(f"not in the run's vocabulary, read as <unk>: {', '.join(unknown)}")
        if n_words > max_len:
            row.append(f"cut to its first {max_len} of {n_words} words (data.max_caption_len)")
        notes.append(row)
    return notes


def generate_captions(checkpoint, captions: list[str], n: int = 8, seed: int = 0, device="cpu",
                      truncation: float | None = None, log=None) -> torch.Tensor:
    """captions -> images (len(captions), n, 3, 64, 64) in [-1, 1]; truncation None = the run's eval.truncation.

    A caption of fewer than 2 words, or with no word in the run's vocabulary (the training classes' captions),
    raises ValueError; `log`, when given, is called with one line per caption that has unknown or cut words."""
    nets, vocab, cfg, _ = load_models(checkpoint, device)
    tokens, lengths = vocab.encode(captions, cfg.data.max_caption_len)
    empty = [c for c, n_tok in zip(captions, lengths.tolist()) if n_tok == 0]
    if empty:
        raise ValueError(f"caption(s) with fewer than 2 words cannot be encoded: {empty}")
    blind = [c for c in captions if all(w not in vocab.stoi for w in tokenize(c))]
    if blind:
        n_words = len(vocab) - len(SPECIALS)
        raise ValueError(f"no word of caption(s) {blind} is in the run's vocabulary ({n_words} words from the "
                         "training classes' captions), so the text encoder would see only <unk>")
    if log:
        for i, (c, row) in enumerate(zip(captions, caption_notes(vocab, captions, cfg.data.max_caption_len))):
            for note in row:
                log(f"caption {i} ({c!r}): {note}")
    psi = cfg.eval.truncation if truncation is None else truncation
    z = sample_noise(n, cfg.model.noise_dim, seed=seed, truncation=psi)
    return generate_from_tokens(nets.text_encoder, nets.generator, tokens, lengths, z, device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or a run directory")
    p.add_argument("--caption", action="append", required=True, help="repeat for several rows")
    p.add_argument("-n", type=int, default=8, help="images per caption (different noise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="noise scale in [0, 1]: lower = more faithful, less varied (default: the run's eval.truncation)")
    p.add_argument("--out", default="generated.png")
    args = p.parse_args(argv)
    ckpt = Path(args.checkpoint)
    if ckpt.is_dir() and (ckpt / "checkpoints" / "best.pt").is_file():
        ckpt = ckpt / "checkpoints" / "best.pt"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        imgs = generate_captions(ckpt, args.caption, args.n, args.seed, device, args.truncation, log=print)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_image(imgs.flatten(0, 1), args.out, nrow=args.n, normalize=True, value_range=(-1, 1))
    for i, c in enumerate(args.caption):
        print(f"row {i}: {c}")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
