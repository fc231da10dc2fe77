"""Reference pipeline for the benchmark: the GAN-CLS training step of the base repo
aelnouby/Text-to-Image-Synthesis, rebuilt here from its published description (own code).

What the base repo does per training step, and what this module reproduces at the same sizes:

- **Data** (its ``Dataset.__getitem__``, one item at a time): the image of the item and a "wrong" image
  (another item) are stored as JPEG bytes; each is decoded with PIL, resized to 64x64, turned into a
  float array (a grey image is replicated to 3 channels), transposed to CHW and scaled to [-1, 1]. The
  1024-d text embedding is a stored input (pretrained char-CNN-RNN); here it is random normal.
- **Generator** (~4.6 M parameters, DCGAN): the 1024-d embedding -> Linear to 128 + BatchNorm +
  LeakyReLU(0.2), concatenated with 100-d noise as a (228, 1, 1) tensor, then ConvTranspose2d
  228->512 (4x4), 512->256, 256->128, 128->64 (each with BatchNorm + ReLU) and 64->3 with tanh: 64x64.
- **Discriminator** (~2.8 M parameters): Conv2d 3->64 (LeakyReLU), 64->128, 128->256, 256->512 (each
  BatchNorm + LeakyReLU(0.2)) -> (512, 4, 4) features; the embedding is projected to 128 (Linear +
  BatchNorm + LeakyReLU), replicated over the 4x4 grid and concatenated (640 channels); a final 4x4
  conv to one logit and a sigmoid. It also returns the (512, 4, 4) features (for feature matching).
- **Losses** (BCE, Adam lr 2e-4, betas (0.5, 0.999)): D step with three separate D passes — (real image,
  its embedding) against one-sided smoothed labels 0.9, (wrong image, embedding) and (G(z, embedding),
  embedding) against 0; the fake is not detached, so D's backward also runs through G (G's gradients are
  then cleared). G step with fresh noise: BCE of D(fake) against the smoothed real label + 100 x MSE
  between the batch-mean D features of the fake and the real images (a fifth D pass) + 50 x L1(fake, real).

Nothing here imports the project's networks: it is a self-contained yardstick.
"""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

EMBED_DIM = 1024  # the base repo's pretrained char-CNN-RNN text embedding
PROJ_DIM = 128  # embedding projection inside G and D
NOISE_DIM = 100
NGF = NDF = 64
IMAGE_SIZE = 64
REAL_LABEL = 0.9  # one-sided label smoothing of the real label
L1_COEF, L2_COEF = 50.0, 100.0  # G loss: L1 to the real image, feature matching
LR, BETAS = 2e-4, (0.5, 0.999)

# Published sizes the benchmark checks its rebuild against (within 10 %).
PUBLISHED_PARAMS = {"generator": 4.6e6, "discriminator": 2.8e6}


def _projection() -> nn.Sequential:
    """1024-d embedding -> 128, BatchNorm, LeakyReLU(0.2)."""
    return nn.Sequential(nn.Linear(EMBED_DIM, PROJ_DIM), nn.BatchNorm1d(PROJ_DIM), nn.LeakyReLU(0.2))


def _up(cin: int, cout: int, first: bool = False) -> list[nn.Module]:
    conv = nn.ConvTranspose2d(cin, cout, 4, 1, 0, bias=False) if first else nn.ConvTranspose2d(cin, cout, 4, 2, 1,
                                                                                                 bias=False)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU()]


class RefGenerator(nn.Module):
    """(embedding (N, 1024), noise (N, 100)) -> (N, 3, 64, 64) in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.project = _projection()
        self.body = nn.Sequential(*_up(PROJ_DIM + NOISE_DIM, 8 * NGF, first=True),  # 1 -> 4
                                  *_up(8 * NGF, 4 * NGF), *_up(4 * NGF, 2 * NGF), *_up(2 * NGF, NGF),  # -> 32
                                  nn.ConvTranspose2d(NGF, 3, 4, 2, 1, bias=False), nn.Tanh())  # -> 64

    def forward(self, embed: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.project(embed), z], dim=1)
        return self.body(h[:, :, None, None])


class RefDiscriminator(nn.Module):
    """(image (N, 3, 64, 64), embedding (N, 1024)) -> (probability (N,), features (N, 512, 4, 4))."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        for cin, cout in ((NDF, 2 * NDF), (2 * NDF, 4 * NDF), (4 * NDF, 8 * NDF)):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)  # 64 -> 4 px
        self.project = _projection()
        self.head = nn.Conv2d(8 * NDF + PROJ_DIM, 1, 4, 1, 0, bias=False)

    def forward(self, img: torch.Tensor, embed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.features(img)  # (N, 512, 4, 4)
        text = self.project(embed)[:, :, None, None].expand(-1, -1, feat.shape[2], feat.shape[3])
        prob = torch.sigmoid(self.head(torch.cat([feat, text], dim=1))).flatten()
        return prob, feat


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- data
def pick_jpegs(jpg_dir: str | Path, n: int) -> list[Path]:
    """`n` JPEG files spread evenly over the sorted folder (all of them when it holds fewer)."""
    files = sorted(Path(jpg_dir).glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no .jpg files in {jpg_dir}")
    if len(files) <= n:
        return files
    return [files[i] for i in np.linspace(0, len(files) - 1, n).round().astype(int)]


def read_bytes(paths: list[Path]) -> list[bytes]:
    """The files' raw JPEG bytes (the base repo keeps them in an HDF5 file; reading is not timed)."""
    return [Path(p).read_bytes() for p in paths]


def decode_item(jpeg: bytes, size: int = IMAGE_SIZE) -> np.ndarray:
    """JPEG bytes -> (3, size, size) float array in [-1, 1], as the base repo's Dataset does per item."""
    img = np.asarray(Image.open(io.BytesIO(jpeg)).resize((size, size)), dtype=np.float64)
    if img.ndim < 3:  # grey image -> 3 channels
        img = np.repeat(img[:, :, None], 3, axis=2)
    return (img.transpose(2, 0, 1) - 127.5) / 127.5


class ReferenceData:
    """Per-item decoding of (right image, wrong image) from in-memory JPEG bytes + a random embedding."""

    def __init__(self, jpegs: list[bytes], seed: int = 0):
        if len(jpegs) < 2:
            raise ValueError("the reference data needs at least 2 JPEG images")
        self.jpegs = jpegs
        self.rng = np.random.default_rng(seed)

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        j = int(self.rng.integers(len(self.jpegs) - 1))
        j += j >= i  # the "wrong" image: any other item
        embed = self.rng.standard_normal(EMBED_DIM)  # stands in for the stored pretrained embedding
        return decode_item(self.jpegs[i]), decode_item(self.jpegs[j]), embed

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> right (B, 3, 64, 64), wrong (B, 3, 64, 64), embedding (B, 1024), float32 on the CPU."""
        idx = self.rng.integers(len(self.jpegs), size=batch_size)
        items = [self.item(int(i)) for i in idx]
        return tuple(torch.from_numpy(np.stack([it[k] for it in items])).float() for k in range(3))


# ---------------------------------------------------------------- training step
class ReferencePipeline:
    """The GAN-CLS step (see the module docstring) on `device`."""

    def __init__(self, device: torch.device | str = "cpu", seed: int = 0):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.G, self.D = RefGenerator().to(self.device), RefDiscriminator().to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS)

    def params(self) -> dict:
        return {"generator": count_params(self.G), "discriminator": count_params(self.D)}

    def step(self, right: torch.Tensor, wrong: torch.Tensor, embed: torch.Tensor) -> dict:
        dev = self.device
        right, wrong, embed = right.to(dev), wrong.to(dev), embed.to(dev)
        n = right.shape[0]
        real_t = torch.full((n,), REAL_LABEL, device=dev)
        fake_t = torch.zeros(n, device=dev)
        # D step: three separate passes
        self.D.zero_grad(set_to_none=True)
        d_real, _ = self.D(right, embed)
        d_wrong, _ = self.D(wrong, embed)
        fake = self.G(embed, torch.randn(n, NOISE_DIM, device=dev))  # not detached, as in the base repo
        d_fake, _ = self.D(fake, embed)
        d_loss = (F.binary_cross_entropy(d_real, real_t) + F.binary_cross_entropy(d_wrong, fake_t)
                  + F.binary_cross_entropy(d_fake, fake_t))
        d_loss.backward()
        self.opt_d.step()
        # G step: adversarial + feature matching + L1
        self.G.zero_grad(set_to_none=True)
        fake = self.G(embed, torch.randn(n, NOISE_DIM, device=dev))
        out, feat_fake = self.D(fake, embed)
        _, feat_real = self.D(right, embed)
        g_loss = (F.binary_cross_entropy(out, real_t)
                  + L2_COEF * F.mse_loss(feat_fake.mean(0), feat_real.mean(0).detach())
                  + L1_COEF * F.l1_loss(fake, right))
        g_loss.backward()
        self.opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_reference(jpegs: list[bytes], batch_size: int, steps: int, warmup: int,
                        device: torch.device | str = "cpu", seed: int = 0) -> dict:
    """Time `steps` full GAN-CLS steps (data decoding included) after `warmup` untimed ones.

    Returns images/s of the full step, of the compute alone, and the data time per batch.
    """
    device = torch.device(device)
    data = ReferenceData(jpegs, seed)
    pipe = ReferencePipeline(device, seed)
    t_data, t_total = [], []
    for k in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        batch = data.batch(batch_size)
        t1 = time.perf_counter()
        losses = pipe.step(*batch)
        _sync(device)
        t2 = time.perf_counter()
        if k >= warmup:
            t_data.append(t1 - t0)
            t_total.append(t2 - t0)
    if not all(np.isfinite(float(v)) for v in losses.values()):
        raise RuntimeError(f"reference pipeline produced non-finite losses: {losses}")
    total, data_s = sum(t_total), sum(t_data)
    return {"images_per_second": batch_size * steps / total,
            "compute_images_per_second": batch_size * steps / (total - data_s),
            "data_ms_per_batch": 1000 * data_s / steps,
            "step_ms_median": 1000 * float(np.median(t_total)),
            "steps": steps, "warmup": warmup, "batch_size": batch_size,
            "jpegs_decoded_per_batch": 2 * batch_size, "params": pipe.params()}
