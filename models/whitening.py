"""PCA whitening of unit-norm representations, fitted once after training (no gradients, no labels)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Whitening(nn.Module):
    """(N, D) unit-norm representation -> (N, D) unit-norm representation.

    Before `fit` it is the identity. `fit(z, eps)` takes the representations of the training images, (M, D),
    and sets mean = z.mean(0) and proj = V diag(1 / sqrt(lambda + eps * lambda_max)) from the eigen-decomposition
    V diag(lambda) V^T of their covariance: afterwards forward(z) = normalize((z - mean) @ proj). With eps -> 0
    the training representations get identity covariance (every direction counts the same in a cosine
    comparison); the floor eps * lambda_max keeps directions of almost no variance from being blown up.

    Buffers only (no parameters: parameter counts do not change); they travel in state_dict. A state_dict
    saved before this module existed loads as the identity, which is what such a network computed.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("proj", torch.eye(dim))
        self.register_buffer("fitted", torch.tensor(False))
        self._active = False  # python mirror of `fitted`: no device sync in forward

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self._active:
            return z
        return F.normalize((z - self.mean) @ self.proj, dim=1)

    @torch.no_grad()
    def fit(self, z: torch.Tensor, eps: float) -> None:
        """z: (M, D) representations of the training images (M >= 2); eps > 0: the eigenvalue floor, relative
        to the largest eigenvalue. Raises ValueError (and changes nothing) for anything else."""
        if z.ndim != 2 or z.shape[1] != self.mean.shape[0] or z.shape[0] < 2:
            raise ValueError(f"whitening needs (M >= 2, {self.mean.shape[0]}) representations, got {tuple(z.shape)}")
        if not eps > 0:
            raise ValueError(f"whitening eps must be > 0, got {eps}")
        x = z.detach().double().cpu()
        mean = x.mean(0)
        evals, evecs = torch.linalg.eigh(torch.cov((x - mean).t()))
        evals = evals.clamp(min=0)
        floor = max(eps * float(evals.max()), 1e-12)
        self.mean.copy_(mean)
        self.proj.copy_(evecs / (evals + floor).sqrt())
        self.fitted.fill_(True)
        self._active = True

    def _identity(self) -> dict:
        """The buffers of the not-fitted (identity) state."""
        dim = self.mean.shape[0]
        return {"mean": torch.zeros(dim), "proj": torch.eye(dim), "fitted": torch.tensor(False)}

    @torch.no_grad()
    def reset(self) -> None:
        """Back to the identity (not fitted)."""
        for name, value in self._identity().items():
            getattr(self, name).copy_(value)
        self._active = False

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for name, value in self._identity().items():  # absent (older checkpoints): the identity
            state_dict.setdefault(prefix + name, value)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self._active = bool(self.fitted)
