"""The evaluation context: everything the metric families share, computed once per evaluation.

`EvalContext` holds the networks, data and config, the source encoder's embeddings of every image of the run's
classes, the evaluation network and the judge; the generated image sets that several families score (from
test-class captions, from the captions' own photos' representations, from one caption per photo of the real half
B, from held-out train-class captions) are cached properties, drawn once with fixed seeds.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from data_utils.augment import center_crop
from metrics.generation import disjoint_halves, fid, kid, real_floor
from models.inference import embed_all_images, embed_images, generate_uint8

NO_EVALUATOR = {"unavailable": "no evaluation network (see report['evaluator'])"}


def unavailable(fn, *args, **kwargs):
    """Run a metric; a too-small input gives {"unavailable": reason} instead of a made-up number."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except ValueError as e:
        return {"unavailable": str(e)}


def entry(fn, *args, **extra) -> dict:
    """{"value": fn(*args), **extra}, or {"unavailable": reason}; the value may itself be a dict."""
    v = unavailable(fn, *args)
    return v if isinstance(v, dict) and "unavailable" in v else {"value": v, **extra}


def one_caption_each(image_set, idx, g: torch.Generator) -> tuple[list[int], list[int]]:
    """For images `idx` of an ImageSet: (image index, caption slot) of one random valid caption each
    (images without a valid caption are skipped)."""
    picks = []
    for i in idx:
        valid = torch.nonzero(image_set.lengths[i] > 0).squeeze(1)
        if len(valid):
            picks.append((int(i), int(valid[torch.randint(len(valid), (1,), generator=g)])))
    return [p[0] for p in picks], [p[1] for p in picks]


def test_captions(test_set, per_class: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """(image index, caption slot) pairs: `per_class` distinct images of each test class, one valid caption each."""
    g = torch.Generator().manual_seed(seed)
    idx = []
    for cls in sorted(set(test_set.labels.tolist())):
        members = torch.nonzero(test_set.labels == cls).squeeze(1)
        idx += members[torch.randperm(len(members), generator=g)][:per_class].tolist()
    return one_caption_each(test_set, idx, g)


def val_captions(val_set, n: int = 200, seed: int = 6) -> tuple[list[int], list[int]]:
    """(image index, caption slot): one caption each of up to n random held-out train-class photos (data.val,
    never trained on)."""
    g = torch.Generator().manual_seed(seed)
    return one_caption_each(val_set, torch.randperm(len(val_set), generator=g)[:n].tolist(), g)


def fid_kid_vs_floor(real: np.ndarray, half_a: np.ndarray, fake: np.ndarray, seed: int = 0) -> tuple[dict, dict]:
    """FID and KID of fakes (M, D) against real[half_a], each with the real-vs-real floor beside it.

    real: (N, D) all real images; half_a: indices from ``disjoint_halves(N, seed)``; the fakes should
    come from the captions of the other half, so value and floor share sample sizes and class mix.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = min(100, len(half_a), len(fake))
            floor = real_floor(real, seed=seed, kid_subset_size=s)
            f, (k, k_std) = fid(real[half_a], fake), kid(real[half_a], fake, subset_size=s, seed=seed)
    except ValueError as e:
        return {"unavailable": str(e)}, {"unavailable": str(e)}
    n = {"n_real": int(len(half_a)), "n_fake": int(len(fake))}
    return ({"value": f, "floor": floor["fid"], **n},
            {"value": k, "std": k_std, "floor": floor["kid_mean"], "floor_std": floor["kid_std"],
             "subset_size": s, **n})


@dataclass
class Samples:
    """Generated images (uint8 (M, 3, 64, 64)), their class labels (M,), and the captions' tokens / lengths /
    image indices / texts they came from."""
    images: torch.Tensor
    labels: np.ndarray
    tokens: torch.Tensor
    lengths: torch.Tensor
    idx: list[int]
    captions: np.ndarray | None = None


@dataclass
class EvalContext:
    nets: object
    data: object
    cfg: object
    device: object = "cpu"
    log: object = print
    evaluator: object = None  # evaluation.evaluator.Evaluator, or None
    judge: object = field(default_factory=lambda: {"unavailable": "skipped (judge_spec=None)"})  # (Evaluator, images,
    # labels) from evaluation.judge.load_judge, or {"unavailable": reason}

    # ------------------------------------------------------------------ real images
    @cached_property
    def all_images(self):
        return self.data.all_images()

    @cached_property
    def _embedded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return embed_all_images(self.nets.encoder, self.data, self.cfg.data.image_size, self.device)

    @property
    def feats(self) -> np.ndarray:
        """The source encoder's (whitened) representation of every image of the run's classes, (N, D)."""
        return self._embedded[0]

    @property
    def labels(self) -> np.ndarray:
        return self._embedded[1]

    @property
    def is_test(self) -> np.ndarray:
        return self._embedded[2]

    @cached_property
    def train_class_images(self):
        """The evaluator's training pool: every image of the train classes."""
        return self.data.train_class_images()

    @cached_property
    def test_evaluator_features(self) -> np.ndarray | None:
        return self.evaluator.features(self.data.test.images) if self.evaluator else None

    @cached_property
    def halves(self) -> tuple[np.ndarray, np.ndarray]:
        """Two disjoint halves (A, B) of the real test images: fakes from B's captions are scored against A."""
        return disjoint_halves(len(self.data.test), seed=0)

    # ------------------------------------------------------------------ generated images
    def generate(self, tokens, lengths, k: int, seed: int, rep: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (C * k, 3, 64, 64): k samples per caption with seeded noise at the run's eval.truncation."""
        return generate_uint8(self.nets, tokens, lengths, k, self.cfg.model.noise_dim, seed=seed, device=self.device,
                              truncation=self.cfg.eval.truncation, rep=rep)

    def embed(self, images: torch.Tensor, whitened: bool = True) -> np.ndarray:
        return embed_images(self.nets.encoder, images, 64, self.device, whitened=whitened)

    @cached_property
    def samples(self) -> Samples:
        """samples.npz: eval.captions_per_test_class captions x eval.samples_per_caption of each test class."""
        test, ec = self.data.test, self.cfg.eval
        img_idx, slots = test_captions(test, ec.captions_per_test_class)
        tok, ln = test.tokens[img_idx, slots], test.lengths[img_idx, slots]
        k = ec.samples_per_caption
        caps = np.repeat(np.array([test.captions[i][s] for i, s in zip(img_idx, slots)], dtype=object), k).astype(str)
        return Samples(self.generate(tok, ln, k, seed=0), np.repeat(test.labels[img_idx].numpy(), k), tok, ln,
                       img_idx, caps)

    @cached_property
    def samples_features(self) -> np.ndarray:
        return self.embed(self.samples.images)

    @cached_property
    def own_photo_samples(self) -> torch.Tensor:
        """The same captions and noise as `samples`, with the representation of each caption's own photo instead
        of the text prior's guess."""
        s, f_test = self.samples, self.feats[self.is_test]  # f_test: the test photos in test-set order
        return self.generate(s.tokens, s.lengths, self.cfg.eval.samples_per_caption, seed=0,
                             rep=torch.from_numpy(f_test[s.idx]))

    @cached_property
    def half_b_samples(self) -> Samples:
        """One fake per caption of real half B (a random valid caption of each photo)."""
        test = self.data.test
        idx, slots = one_caption_each(test, self.halves[1].tolist(), torch.Generator().manual_seed(2))
        tok, ln = test.tokens[idx, slots], test.lengths[idx, slots]
        return Samples(self.generate(tok, ln, 1, seed=2), test.labels[idx].numpy(), tok, ln, idx)

    @cached_property
    def val_samples(self) -> Samples:
        """One fake per caption of up to 200 held-out train-class photos."""
        val = self.data.val
        idx, slots = val_captions(val)
        tok, ln = val.tokens[idx, slots], val.lengths[idx, slots]
        return Samples(self.generate(tok, ln, 1, seed=6), val.labels[idx].numpy(), tok, ln, idx)

    def real_test_images(self, size: int = 64) -> torch.Tensor:
        return center_crop(self.data.test.images, size)
