"""Losses as small pure functions of tensors (unit-tested in tests/test_losses.py)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP / SimCLR-style) between paired unit vectors a[i] <-> b[i].

    a, b: (N, D) L2-normalised -> scalar; each row's positive is the same row of the other set and
    the other N-1 rows are negatives. Equals log(N) for random embeddings, -> 0 for perfect ones.
    """
    logits = a @ b.t() / temperature  # (N, N)
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def soft_info_nce(a: torch.Tensor, b: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with soft targets: a, b (N, D) unit vectors, target (N, N) rows summing to 1 (symmetric).

    Cross-entropy between target[i] and softmax_j(a_i . b_j / temperature), both directions. With
    target = identity it equals `info_nce`.
    """
    logits = a @ b.t() / temperature
    return 0.5 * (_soft_ce(logits, target) + _soft_ce(logits.t(), target.t()))


def _soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the cross-entropy between target[i] and softmax(logits[i]): (N, M), (N, M) -> scalar."""
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


def affinity_targets(sim: torch.Tensor, alpha: float, temperature: float) -> torch.Tensor:
    """Soft positives from a similarity matrix sim (N, N) (e.g. caption TF-IDF cosine):
    (1 - alpha) on the pair itself + alpha spread over the others by softmax(sim / temperature)."""
    n = sim.shape[0]
    eye = torch.eye(n, device=sim.device, dtype=torch.bool)
    others = F.softmax((sim / temperature).masked_fill(eye, float("-inf")), dim=1) if n > 1 else torch.zeros_like(sim)
    return (1 - alpha) * eye.to(sim.dtype) + alpha * others


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(a_i, b_i): a, b (N, D) -> scalar in [0, 2]. Used for distillation and the prior."""
    return (1 - F.cosine_similarity(a, b, dim=1)).mean()


def d_hinge(real: torch.Tensor, mismatch: torch.Tensor, fake: torch.Tensor, mismatch_weight: float = 0.5
            ) -> torch.Tensor:
    """Matching-aware hinge D loss (GAN-CLS with hinge): logits (N,) each -> scalar.

    real: D(real image, its caption) pushed above +1; fake: D(G(...), caption) and mismatch:
    D(real image, another image's caption) pushed below -1, sharing the negative weight.
    """
    neg = (1 - mismatch_weight) * F.relu(1 + fake).mean() + mismatch_weight * F.relu(1 + mismatch).mean()
    return F.relu(1 - real).mean() + neg


def g_hinge(fake: torch.Tensor) -> torch.Tensor:
    """Hinge G loss: -mean D(G(...), caption)."""
    return -fake.mean()


def r1_penalty(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over the batch of ||d logits / d images||^2.

    `images` must have requires_grad=True and produced `logits` (N,).
    """
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over dims, averaged over the batch (conditioning augmentation)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()

