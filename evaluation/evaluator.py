"""The evaluation network: a small CNN classifier trained from scratch, for evaluation only.

It is never used in training. Its penultimate features are the FID/KID space (the role Inception
plays in the usual protocol, but nothing here is pretrained) and its predictions check whether a
generated image of a *train* class is recognised as that class. It is trained on the images of the
20 train classes (train + validation split) with their class labels, minus a seeded, stratified
hold-out (``EvaluatorSpec.holdout_fraction`` per class) on which its own accuracy is measured, so
the "recognised" number of generated images has a real-image reference beside it. The 5 test
classes are unseen by it: for them only its features are used, never its class predictions.

Input: uint8 images (N, 3, H, W); the centre ``crop`` (64 px, the generator's size) is
area-downsampled to ``input_size`` (32 px). Training: random crops of the downsampled full image
+ horizontal flips, AdamW with a one-cycle schedule, label smoothing. evaluation/judge.py trains another
network the same way (``arch=resnet``: evaluation/judge_net.py at 64 px, random resized crops, predictions
averaged over each image and its mirror image). Everything is seeded; the
same data, spec, device type and thread count give bit-identical weights. ``load_or_train``
caches the weights (e.g. in ``runs/<id>/eval/evaluator.pt``) under a fingerprint of spec + data.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.files import atomic_write
from data_utils.augment import center_crop, random_crop_flip, random_resized_crop_flip, to_float, to_uint8

from .judge_net import JudgeNet

__all__ = ["EvaluatorSpec", "EvalNet", "Evaluator", "build_net", "stratified_holdout", "train_evaluator",
           "load_or_train"]


@dataclass(frozen=True)
class EvaluatorSpec:
    """Fixed hyper-parameters (part of the cache fingerprint; change them and the cache retrains)."""
    input_size: int = 32
    crop: int = 64
    width: int = 32  # feature dim = 4 * width
    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    holdout_fraction: float = 0.1
    seed: int = 0
    stem_stride: int = 1
    arch: str = "plain"  # plain: EvalNet | resnet: evaluation/judge_net.py's JudgeNet (64-px input only)
    augment: str = "crop"  # crop: random crops + flips | resized: random resized crops (min_area..1) + flips
    min_area: float = 0.35  # augment=resized: the smallest crop, as a share of the image's area
    flip_average: bool = False  # features (hence logits) averaged over the image and its mirror image


class EvalNet(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> logits (B, n_classes); ``features`` -> (B, 4 * width).

    3x3 conv + BN + ReLU blocks, stride 1 then 2 until 4 px (S = 32: four blocks, 32 -> 4 px; S = 64: five),
    global average pooling. Widths w, 2w, 4w, 4w, ...
    """

    def __init__(self, n_classes: int, width: int = 32, input_size: int = 32, stem_stride: int = 1):
        super().__init__()
        if input_size < 16 * stem_stride or input_size & (input_size - 1) or stem_stride not in (1, 2):
            raise ValueError(f"EvalNet needs input_size a power of two >= 16 * stem_stride and stem_stride 1 or 2, "
                             f"got {input_size}, {stem_stride}")
        w, layers = width, []
        chans = [3, w, 2 * w] + [4 * w] * ((input_size // stem_stride).bit_length() - 4)
        for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:])):
            s = stem_stride if i == 0 else 2
            layers += [nn.Conv2d(c_in, c_out, 3, s, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(4 * w, n_classes)
        self.feature_dim = 4 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_net(spec: EvaluatorSpec, n_classes: int) -> nn.Module:
    """The network `spec` names (untrained): EvalNet or JudgeNet, both with ``features``, ``head``, ``feature_dim``."""
    if spec.arch == "plain":
        return EvalNet(n_classes, spec.width, spec.input_size, spec.stem_stride)
    if spec.arch == "resnet":
        return JudgeNet(n_classes, spec.width, spec.input_size)
    raise ValueError(f"EvaluatorSpec.arch must be plain or resnet, got {spec.arch!r}")


def _downsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """float (N, 3, H, W) -> (N, 3, size, size) by area averaging (anti-aliased for integer factors)."""
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="area")


def _eval_input(images: torch.Tensor, spec: EvaluatorSpec) -> torch.Tensor:
    """uint8 (N, 3, H, W), H >= crop -> float (N, 3, input_size, input_size): centre crop, downsample."""
    return _downsample(to_float(center_crop(images, spec.crop)), spec.input_size)


class Evaluator:
    """A trained EvalNet plus its class ids; ``classes[i]`` is the dataset label of logit i."""

    def __init__(self, net: EvalNet, classes: list[int], spec: EvaluatorSpec, info: dict):
        self.net, self.classes, self.spec, self.info = net.eval(), list(classes), spec, info

    @torch.no_grad()
    def features_and_logits(self, images: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, 3, H, W) -> features (N, feature_dim), logits (N, len(classes)), both float32."""
        dev = next(self.net.parameters()).device
        feats, logits = [], []
        for i in range(0, len(images), batch_size):
            x = _eval_input(images[i:i + batch_size], self.spec).to(dev)
            f = self.net.features(x)
            if self.spec.flip_average:
                f = (f + self.net.features(x.flip(-1))) / 2
            feats.append(f.float().cpu())
            logits.append(self.net.head(f).float().cpu())
        if not feats:
            return np.zeros((0, self.net.feature_dim), np.float32), np.zeros((0, len(self.classes)), np.float32)
        return torch.cat(feats).numpy(), torch.cat(logits).numpy()

    def features_and_predictions(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, 3, H, W) -> features (N, feature_dim) float32, predicted dataset labels (N,) int64."""
        feats, logits = self.features_and_logits(images)
        return feats, np.asarray(self.classes, np.int64)[logits.argmax(1)]

    def logits(self, images: torch.Tensor) -> np.ndarray:
        """uint8 (N, 3, H, W) -> (N, len(classes)) float32 logits; column i is dataset class classes[i]."""
        return self.features_and_logits(images)[1]

    def features(self, images: torch.Tensor) -> np.ndarray:
        """uint8 (N, 3, H, W) -> (N, feature_dim) float32 penultimate features."""
        return self.features_and_predictions(images)[0]


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Bool mask (N,): per class, round(fraction * n) (>= 1) seeded random items; none for classes with n < 3."""
    labels = np.asarray(labels)
    rng, mask = np.random.default_rng(seed), np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) >= 3 and fraction > 0:
            mask[rng.permutation(idx)[:max(1, round(fraction * len(idx)))]] = True
    return mask


def train_evaluator(images: torch.Tensor, labels: np.ndarray, spec: EvaluatorSpec = EvaluatorSpec(),
                    device="cpu", log=print) -> Evaluator:
    """Train on uint8 images (N, 3, H, W) with dataset labels (N,), minus ``stratified_holdout``.

    Returns an Evaluator whose ``info`` has n_train, n_holdout, holdout_acc (None without a
    hold-out), train_seconds. Raises ValueError for fewer than 2 classes.
    """
    t0 = time.time()
    labels = np.asarray(labels)
    classes = sorted(np.unique(labels).tolist())
    if len(classes) < 2:
        raise ValueError(f"the evaluator needs >= 2 classes, got {len(classes)}")
    if spec.augment not in ("crop", "resized"):
        raise ValueError(f"EvaluatorSpec.augment must be crop or resized, got {spec.augment!r}")
    y_all = torch.as_tensor(np.searchsorted(classes, labels), dtype=torch.long)
    hold = stratified_holdout(labels, spec.holdout_fraction, spec.seed)
    tr = torch.as_tensor(np.flatnonzero(~hold))
    scale = spec.input_size / spec.crop
    pool = to_uint8(_downsample(to_float(images[tr]), round(images.shape[-1] * scale)))  # (n, 3, 36, 36)
    y = y_all[tr]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        net = build_net(spec, len(classes)).to(device)
    g = torch.Generator().manual_seed(spec.seed)
    steps_per_epoch = max(1, -(-len(tr) // spec.batch_size))
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, spec.lr, total_steps=spec.epochs * steps_per_epoch)
    with torch.enable_grad(), torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
        net.train()
        for _ in range(spec.epochs):
            perm = torch.randperm(len(tr), generator=g)
            for i in range(0, len(tr), spec.batch_size):
                b = perm[i:i + spec.batch_size]
                if len(b) < 2:  # BatchNorm needs > 1 sample
                    continue
                if spec.augment == "resized":
                    x = random_resized_crop_flip(pool[b], spec.input_size, spec.min_area, generator=g).to(device)
                else:
                    x = random_crop_flip(pool[b], spec.input_size, generator=g).to(device)
                loss = F.cross_entropy(net(x), y[b].to(device), label_smoothing=spec.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    ev = Evaluator(net, classes, spec, {})
    acc = None
    if hold.any():
        _, pred = ev.features_and_predictions(images[torch.as_tensor(np.flatnonzero(hold))])
        acc = float(np.mean(pred == labels[hold]))
    ev.info = {"n_classes": len(classes), "n_train": int(len(tr)), "n_holdout": int(hold.sum()),
               "holdout_acc": acc, "chance": 1.0 / len(classes), "feature_dim": net.feature_dim,
               "train_seconds": time.time() - t0}
    log(f"evaluator: trained on {len(tr)} images of {len(classes)} classes in {ev.info['train_seconds']:.1f}s, "
        f"held-out accuracy {acc}")
    return ev


# Spec fields added after evaluators were first cached: at these values they leave the fingerprint as it was, so
# the evaluators already kept in run folders stay valid (and the numbers computed with them unchanged).
_LATER_FIELDS = {"arch": "plain", "augment": "crop", "min_area": 0.35, "flip_average": False}


def fingerprint(images: torch.Tensor, labels: np.ndarray, spec: EvaluatorSpec) -> str:
    """sha256 of the spec, the labels and the image bytes: the evaluator's identity."""
    fields = {k: v for k, v in asdict(spec).items() if _LATER_FIELDS.get(k, object()) != v}
    h = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    h.update(np.ascontiguousarray(np.asarray(labels, np.int64)).tobytes())
    h.update(images.contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def load_or_train(path: Path | None, images: torch.Tensor, labels: np.ndarray,
                  spec: EvaluatorSpec = EvaluatorSpec(), device="cpu", log=print, announce: str | None = None
                  ) -> tuple[Evaluator, bool]:
    """The evaluator cached at ``path`` if its fingerprint matches, else a freshly trained one (saved there).

    Training is announced before it starts (`announce`, else a line naming the images, epochs and ``path``).
    Returns (evaluator, cached). A missing, unreadable or stale cache file is retrained, never trusted; one that
    cannot be written (a read-only folder) is skipped with a message, and the network is used unsaved.
    """
    key = fingerprint(images, labels, spec)
    if path is not None and Path(path).is_file():
        try:
            blob = torch.load(path, map_location=device, weights_only=True)
            if blob.get("fingerprint") == key:
                net = build_net(spec, len(blob["classes"])).to(device)
                net.load_state_dict(blob["state_dict"])
                return Evaluator(net, blob["classes"], spec, json.loads(blob["info"])), True
            log(f"evaluator: {path} was trained on other data or settings; retraining")
        except Exception as e:  # noqa: BLE001 - any unreadable cache is simply rebuilt
            log(f"evaluator: cannot read {path} ({e}); retraining")
    log(announce or f"evaluator: training the evaluation network on {len(images):,} images of "
        f"{len(np.unique(labels))} classes (minus its hold-out), {spec.epochs} epochs"
        + (f"; kept as {path}" if path else ""))
    ev = train_evaluator(images, labels, spec, device, log)
    if path is not None:
        blob = {"fingerprint": key, "classes": ev.classes, "info": json.dumps(ev.info), "state_dict": ev.net.state_dict()}
        try:
            atomic_write(path, lambda tmp: torch.save(blob, tmp))
        except (OSError, RuntimeError) as e:  # e.g. a read-only data folder (torch.save raises RuntimeError)
            log(f"evaluator: cannot save {path} ({e}); it will be trained again next time")
    return ev, False
