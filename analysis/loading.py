"""Loading helpers for `analysis.ipynb`: where a run lives, what it logged, and the data it was trained on.

Every function is small and documented so a reader can open this file beside the notebook. Nothing
here is a model or a training step: networks, metrics and generation come from the project's packages.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from core import files
from data_utils.classes import CLASS_NAMES, class_name  # noqa: F401 - re-exported for the notebook
from metrics.projection import tsne, umap_2d  # noqa: F401 - re-exported for the notebook (also used by W&B media)


# ------------------------------------------------------------------ environment
def on_colab() -> bool:
    """True when this Python runs inside Google Colab."""
    return "google.colab" in sys.modules


def pick_device() -> str:
    """"cuda" when a GPU is visible, else "cpu" (the same rule as training: train.device=auto)."""
    from core.runtime import pick_device as _pick
    return str(_pick("auto"))


def describe_device(device: str) -> str:
    """One line naming the device, e.g. "GPU: NVIDIA H100" or "CPU (2 threads)"."""
    import torch
    if str(device).startswith("cuda"):
        return f"GPU: {torch.cuda.get_device_name(torch.device(device))}"
    return f"CPU ({torch.get_num_threads()} threads)"


def display_path(path, base: str | Path | None = None) -> str:
    """A path to print: relative to the working folder when inside it, else relative to `base`'s parent
    (e.g. "<run_id>/checkpoints/best.pt"), else just its name. Keeps machine-specific folders out of outputs."""
    if path is None:
        return "-"
    p = Path(path).resolve()
    for root in (Path.cwd(), Path(base).resolve().parent if base else None):
        if root is not None:
            try:
                return str(p.relative_to(root))
            except ValueError:
                pass
    return p.name


def run_overview(best: dict) -> list[tuple[str, str]]:
    """(field, value) pairs describing the result of `tracking.best_run.best_run` for printing."""
    rows = [("source", str(best.get("source", "-"))), ("run", str(best.get("run_id", "-")))]
    if best.get("trial"):
        rows.append(("sweep trial", f"{best['trial']} of sweep {best.get('sweep_id')}"))
    metric = best.get("metric")
    rows.append((str(best.get("metric_name", "metric")), "-" if metric is None else f"{metric:.4f}"))
    rows.append(("checkpoint", display_path(best.get("checkpoint"), best.get("run_dir"))))
    for key in ("best_epoch", "epochs", "images_seen", "train_seconds"):
        if key in best.get("metrics", {}):
            v = best["metrics"][key]
            rows.append((key, f"{v:,.0f}" if isinstance(v, float) and v > 100 else f"{v:,}" if isinstance(v, int)
                         else f"{v:.4g}"))
    return rows


# ------------------------------------------------------------------ run files
def run_dir_of(best: dict) -> Path | None:
    """The run folder of a `best_run` result (None for a W&B artifact downloaded without its folder)."""
    d = best.get("run_dir")
    return Path(d) if d and Path(d).is_dir() else None


def read_stats(run_dir) -> list[dict]:
    """The rows of `<run_dir>/stats.jsonl` (one JSON object per logged step or epoch); [] when absent."""
    return files.read_stats(run_dir) if run_dir else []


def read_metrics(run_dir) -> dict:
    """`<run_dir>/eval/metrics.json` as a dict; {} when the run has no evaluation file."""
    path = Path(run_dir) / "eval" / "metrics.json" if run_dir else None
    if path is None or not path.is_file():
        return {}
    return json.loads(path.read_text())


def last_sample_grid(run_dir) -> Path | None:
    """The newest `samples/epoch_XXX.png` the trainer wrote (fixed captions x fixed noises), or None."""
    pngs = sorted((Path(run_dir) / "samples").glob("epoch_*.png")) if run_dir else []
    return pngs[-1] if pngs else None


# ------------------------------------------------------------------ data
def load_run_data(cfg, vocab):
    """The run's classes and images (`data_utils.dataset.load_data`) with the checkpoint's vocabulary.

    The cache named in the run's config is used; when it is missing, `data/flowers.h5` (where the
    Colab cell puts it) is tried, then `data_utils.prepare.ensure_cache` builds it from the data folder.
    """
    from data_utils.dataset import load_data
    from data_utils.prepare import ensure_cache
    if not Path(cfg.data.cache).is_file() and Path("data/flowers.h5").is_file():
        cfg.data.cache = "data/flowers.h5"
    if not Path(cfg.data.cache).is_file():
        ensure_cache(cfg.data)
    return load_data(cfg.data, vocab=vocab)


def pick_test_captions(test_set, per_class: int = 5, seed: int = 0) -> list[dict]:
    """Up to `per_class` captions per unseen (test) class, each from a different image, chosen by the same
    seeded rule as the evaluation (`evaluation.context.test_captions`). One dict per caption:
    label, image (index into test_set), slot (caption number of that image), caption (text), column."""
    from evaluation.context import test_captions
    idx, slots = test_captions(test_set, per_class, seed)
    picks, col = [], {}
    for i, s in zip(idx, slots):
        label = int(test_set.labels[i])
        col[label] = col.get(label, -1) + 1
        picks.append({"label": label, "image": i, "slot": s, "caption": test_set.captions[i][s],
                      "column": col[label]})
    return picks


ROUTES = ("text", "photo")  # the two test-time routes: caption alone; the caption's own photo + the caption


def generate_for_picks(nets, cfg, test_set, picks: list[dict], device, seed: int = 0, route: str = "text"):
    """One image per picked caption (`models.inference.generate_from_tokens`, its own noise each, scaled by the
    run's eval.truncation) -> uint8 array (len(picks), 64, 64, 3). route "text": G gets the text prior's guess
    r = P(T(caption)), no image; "photo": G gets the source encoder's r of the photo the caption was written for
    (a test-class photo the model never saw) with that caption."""
    from models.inference import embed_images, generate_from_tokens, sample_noise
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    idx = [p["image"] for p in picks]
    slots = [p["slot"] for p in picks]
    tokens, lengths = test_set.tokens[idx, slots], test_set.lengths[idx, slots]
    z = sample_noise(len(picks), 1, cfg.model.noise_dim, seed=seed, truncation=cfg.eval.truncation)
    rep = None
    if route == "photo":
        rep = torch.from_numpy(embed_images(nets.encoder, test_set.images[idx], cfg.data.image_size, device))
    out = generate_from_tokens(nets.text_encoder, nets.generator, tokens, lengths, z, device, per_caption_noise=True,
                               rep=rep)
    return to_hwc_uint8(out[:, 0])


def judge_score(images_hwc, labels, cfg, device="cpu", classes=None) -> dict:
    """How often the judge (evaluation/judge.py, kept beside the data cache) names each image's class, among
    `classes` (e.g. the 5 unseen ones) -> {"score", "n", "chance"}; {"unavailable": why} when the cache has no
    judge yet (the run's evaluation trains it once per cache)."""
    from evaluation.judge import judge_path, load_judge
    if not judge_path(Path(cfg.data.cache)).is_file():
        return {"unavailable": f"no judge beside {cfg.data.cache} yet (`python -m app.evaluate --run` trains it)"}
    from evaluation.judge import recognition_rates
    judge, _, _ = load_judge(Path(cfg.data.cache), device=device, log=lambda *a: None)
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images_hwc).transpose(0, 3, 1, 2)))  # uint8 (N, 3, H, W)
    cands = list(judge.classes if classes is None else classes)
    rate = recognition_rates(judge.logits(x), judge.classes, np.asarray(labels), {"score": cands})["score"]
    return {"score": rate, "n": int(len(labels)), "chance": 1 / len(cands)}


def real_images(image_set, idx, size: int = 64):
    """Centre crops of real images `image_set.images[idx]` -> uint8 array (len(idx), size, size, 3)."""
    from data_utils.augment import center_crop_hwc
    return center_crop_hwc(image_set.images[list(idx)], size)


def to_hwc_uint8(images):
    """Generated images, a tensor (..., 3, H, W) in [-1, 1] -> uint8 numpy (..., H, W, 3) for plotting."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().cpu()
    return x.movedim(-3, -1).numpy()


# ------------------------------------------------------------------ embeddings
def load_embeddings(run_dir, nets=None, data=None, cfg=None, device="cpu") -> dict:
    """Source-encoder embeddings of every image of the 25 classes.

    Read from `<run_dir>/eval/embeddings.npz` (written by `evaluation.evaluate`); when that file is missing,
    recomputed with `models.inference.embed_all_images` (needs nets, data and cfg). Returns a dict with
    features (N, D), labels (N,), is_test_class (N,) and origin ("eval/embeddings.npz" or "recomputed")."""
    path = Path(run_dir) / "eval" / "embeddings.npz" if run_dir else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            return {"features": z["features"], "labels": z["labels"], "is_test_class": z["is_test_class"],
                    "origin": "eval/embeddings.npz"}
    if nets is None or data is None or cfg is None:
        raise FileNotFoundError("no eval/embeddings.npz for this run; pass nets, data and cfg to recompute")
    from models.inference import embed_all_images
    feats, labels, is_test = embed_all_images(nets.encoder, data, cfg.data.image_size, device)
    return {"features": feats, "labels": labels, "is_test_class": is_test, "origin": "recomputed"}


# ------------------------------------------------------------------ numbers for tables
def parameter_rows(nets, metrics: dict | None = None) -> list[dict]:
    """`models.build.param_table` of the loaded networks, plus (when the eval file has it) how many
    parameters were still trainable in the GAN stage, when the two encoders are frozen."""
    from models.build import param_table
    rows = param_table(nets)
    stage2 = {r["network"]: r.get("trainable_params") for r in (metrics or {}).get("param_table", [])
              if isinstance(r, dict)}
    for r in rows:
        r["trainable_gan_stage"] = stage2.get(r["network"])
    return rows


def checkpoint_overview(ckpt: dict, data, vocab) -> list[tuple[str, str]]:
    """(field, value) pairs: the checkpoint's epoch, the class split and the set sizes, for printing."""
    state = ckpt.get("state", {})
    names = lambda classes: ", ".join(class_name(c) for c in sorted(classes))  # noqa: E731
    return [("checkpoint epoch", f"{state.get('epoch', '-')} ({state.get('stage', '-')} stage)"),
            (f"train classes ({len(data.train_classes)})", names(data.train_classes)),
            (f"unseen test classes ({len(data.test_classes)})", names(data.test_classes)),
            ("images: train / validation / test", f"{len(data.train):,} / {len(data.val):,} / {len(data.test):,}"),
            ("vocabulary (training captions only)", f"{len(vocab):,} words")]
