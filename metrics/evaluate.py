"""End-of-run evaluation: the same code runs at the end of training and on any saved checkpoint.

    python -m metrics.evaluate --run runs/<id>            # or --checkpoint PATH [--cache data/flowers.h5]

Writes runs/<id>/eval/{metrics.json, embeddings.npz, samples.npz, evaluator.pt} and prints a table
(metric | value | baseline/floor | what good looks like). Exit code 2, with the file named, for a
missing/corrupt/foreign checkpoint or missing evaluation data. See metrics/report.py for every key.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from data_utils.augment import center_crop, center_crop_hwc, to_float, to_uint8

from .alignment import class_consistency, r_precision
from .baselines import color_histogram_features, random_cnn_features
from .diversity import ms_ssim_diversity, random_pairs
from .encoder import encoder_report
from .evaluator import EvaluatorSpec, load_or_train
from .generation import disjoint_halves, fid, kid, real_floor
from .grid import grid_contrasts
from .judge import JUDGE_SPEC, judge_report, load_judge

DIVERSITY_NOISES, DIVERSITY_CAPTIONS_PER_CLASS, REAL_PAIRS = 4, 2, 200


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


def _unavailable(fn, *args, **kwargs):
    """Run a metric; a too-small input gives {"unavailable": reason} instead of a made-up number."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except ValueError as e:
        return {"unavailable": str(e)}


def test_captions(test_set, per_class: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """(image index, caption slot) pairs: `per_class` distinct images of each test class, one valid caption each."""
    g = torch.Generator().manual_seed(seed)
    idx = []
    for cls in sorted(set(test_set.labels.tolist())):
        members = torch.nonzero(test_set.labels == cls).squeeze(1)
        idx += members[torch.randperm(len(members), generator=g)][:per_class].tolist()
    return one_caption_each(test_set, idx, g)


def one_caption_each(image_set, idx, g: torch.Generator) -> tuple[list[int], list[int]]:
    """For images `idx` of an ImageSet: (image index, caption slot) of one random valid caption each
    (images without a valid caption are skipped)."""
    picks = []
    for i in idx:
        valid = torch.nonzero(image_set.lengths[i] > 0).squeeze(1)
        if len(valid):
            picks.append((int(i), int(valid[torch.randint(len(valid), (1,), generator=g)])))
    return [p[0] for p in picks], [p[1] for p in picks]


def _generate(nets, tokens, lengths, k: int, noise_dim: int, seed: int, device, batch: int = 128,
              truncation: float = 1.0, rep: torch.Tensor | None = None) -> torch.Tensor:
    """tokens (C, L), lengths (C,) -> uint8 (C * K, 3, 64, 64) on CPU, K samples per caption (seeded noise);
    rep (C, D): source representations instead of the text prior's guesses."""
    from training.generate import generate_from_tokens, sample_noise
    z = sample_noise(len(tokens), k, noise_dim, seed=seed, truncation=truncation)
    out = [generate_from_tokens(nets.text_encoder, nets.generator, tokens[i:i + batch], lengths[i:i + batch],
                                z[i:i + batch], device, per_caption_noise=True,
                                rep=None if rep is None else rep[i:i + batch]).flatten(0, 1).cpu()
           for i in range(0, len(tokens), batch)]
    return to_uint8(torch.cat(out)) if out else torch.zeros((0, 3, 64, 64), dtype=torch.uint8)


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


def val_captions(val_set, n: int = 200, seed: int = 6) -> tuple[list[int], list[int]]:
    """(image index, caption slot): one caption each of up to n random held-out train-class photos (data.val,
    never trained on)."""
    g = torch.Generator().manual_seed(seed)
    return one_caption_each(val_set, torch.randperm(len(val_set), generator=g)[:n].tolist(), g)


def _entry(fn, *args, **extra) -> dict:
    """{"value": fn(*args), **extra}, or {"unavailable": reason}; the value may itself be a dict."""
    v = _unavailable(fn, *args)
    return v if isinstance(v, dict) and "unavailable" in v else {"value": v, **extra}


@torch.no_grad()
def generation_report(nets, data, cfg, feats, labels, is_test, ev, tr_set, device, log=print,
                      judge=None) -> tuple[dict, torch.Tensor, tuple]:
    """Generation metrics from text alone (see metrics/report.py); tr_set = data.train_class_images(), the
    evaluator's training pool; judge = (Evaluator, its images, its labels) from metrics.judge.load_judge, or
    {"unavailable": reason}. Returns (report, samples uint8 (M, 3, 64, 64), (sample labels, sample
    captions)) for samples.npz."""
    ec, zd, k, psi = cfg.eval, cfg.model.noise_dim, cfg.eval.knn_k, cfg.eval.truncation
    test, text = data.test, nets.text_encoder
    y_test, f_test = labels[is_test], feats[is_test]
    e_test = ev.features(test.images) if ev else None
    evf = (lambda imgs: ev.features(imgs)) if ev else None
    no_ev = {"unavailable": "no evaluation network (see report['evaluator'])"}

    # 1) samples.npz: captions_per_test_class captions x samples_per_caption of each test class
    img_idx, slots = test_captions(test, ec.captions_per_test_class)
    s_tok, s_len = test.tokens[img_idx, slots], test.lengths[img_idx, slots]
    fake = _generate(nets, s_tok, s_len, ec.samples_per_caption, zd, seed=0, device=device, truncation=psi)
    s_labels = np.repeat(test.labels[img_idx].numpy(), ec.samples_per_caption)
    s_caps = np.repeat(np.array([test.captions[i][s] for i, s in zip(img_idx, slots)], dtype=object),
                       ec.samples_per_caption).astype(str)

    def consistency(imgs, enc_feats) -> tuple:
        """Class consistency of generated images (and their encoder features) with the caption labels s_labels:
        (encoder kNN, evaluator kNN)."""
        return (_unavailable(class_consistency, enc_feats, s_labels, f_test, y_test, k=k),
                _unavailable(class_consistency, evf(imgs), s_labels, e_test, y_test, k=k) if ev else no_ev)
    r = {"n_generated": len(fake), "truncation": psi}
    enc_fake = embed_images(nets.encoder, fake, 64, device)  # also used by 6) below
    r["class_consistency_encoder_knn"], r["class_consistency_evaluator_knn"] = consistency(fake, enc_fake)
    # the same captions and noise, with the representation of each caption's own photo (f_test holds the test
    # photos in test-set order) instead of the prior's guess: how much class fidelity the prior loses (gap to
    # the above) vs the generator (gap to real photos); a generator trained at train.text_rep_prob 1 never saw
    # such representations, so there it measures the path from a photo (README, Results)
    own = _generate(nets, s_tok, s_len, ec.samples_per_caption, zd, seed=0, device=device, truncation=psi,
                    rep=torch.from_numpy(f_test[img_idx]))
    own_cc = consistency(own, embed_images(nets.encoder, own, 64, device))
    r["class_consistency_own_photo_representation"] = dict(zip(("encoder_knn", "evaluator_knn"), own_cc))

    # 2) one fake per caption of real half B, scored against real half A (same footing as the floor)
    half_a, half_b = disjoint_halves(len(test), seed=0)
    b_idx, b_slots = one_caption_each(test, half_b.tolist(), torch.Generator().manual_seed(2))
    tok, ln = test.tokens[b_idx, b_slots], test.lengths[b_idx, b_slots]
    fake_b = _generate(nets, tok, ln, 1, zd, seed=2, device=device, truncation=psi)
    enc_b = embed_images(nets.encoder, fake_b, 64, device)
    r["fid_encoder"], r["kid_encoder"] = fid_kid_vs_floor(f_test, half_a, enc_b)
    r["fid_evaluator"], r["kid_evaluator"] = (fid_kid_vs_floor(e_test, half_a, evf(fake_b)) if ev else (no_ev, no_ev))
    b_real = np.asarray(b_idx)
    r["class_consistency_reference"] = {
        "chance": 1.0 / max(1, len(data.test_classes)),
        "real_encoder_knn": _unavailable(class_consistency, f_test[b_real], y_test[b_real], f_test[half_a],
                                         y_test[half_a], k=k),
        "real_evaluator_knn": _unavailable(class_consistency, e_test[b_real], y_test[b_real], e_test[half_a],
                                           y_test[half_a], k=k) if ev else no_ev}
    # R-precision lives in the image-text space of stage 1: image embeddings before the whitening
    t_emb = text.embed(text(tok.to(device), ln.to(device))).cpu().numpy() if len(tok) else np.zeros((0, 1))
    shared_b = embed_images(nets.encoder, fake_b, 64, device, whitened=False)
    shared_real = embed_images(nets.encoder, test.images[torch.as_tensor(b_real, dtype=torch.long)],
                               cfg.data.image_size, device, whitened=False)
    cand = min(100, len(b_idx))
    r["r_precision"] = _entry(r_precision, shared_b, t_emb, cand, candidates=cand, chance=1 / max(cand, 1),
                              n=len(b_idx),
                              real_reference=_unavailable(r_precision, shared_real, t_emb, cand))

    # 3) recognised as its (train) class by the evaluator: captions of the evaluator's hold-out images
    if ev and ev.info.get("holdout_acc") is not None:
        from .evaluator import stratified_holdout
        hold = np.flatnonzero(stratified_holdout(tr_set.labels.numpy(), ev.spec.holdout_fraction, ev.spec.seed))
        h_idx, h_slots = one_caption_each(tr_set, hold.tolist(), torch.Generator().manual_seed(3))
        fake_h = _generate(nets, tr_set.tokens[h_idx, h_slots], tr_set.lengths[h_idx, h_slots], 1, zd, 3, device,
                           truncation=psi)
        pred = ev.features_and_predictions(fake_h)[1]
        r["recognised_train_class"] = {"value": float(np.mean(pred == tr_set.labels[h_idx].numpy())),
                                       "real_reference": ev.info["holdout_acc"], "chance": ev.info["chance"],
                                       "n": len(h_idx)}
    else:
        r["recognised_train_class"] = no_ev if not ev else {"unavailable": "the evaluator has no hold-out images"}

    # 4) diversity: MS-SSIM between samples of one caption vs between real test-class images
    d_idx, d_slots = test_captions(test, DIVERSITY_CAPTIONS_PER_CLASS, seed=1)
    from training.generate import generate_from_tokens, sample_noise
    zdiv = sample_noise(DIVERSITY_NOISES, zd, seed=1, truncation=psi)
    div = generate_from_tokens(text, nets.generator, test.tokens[d_idx, d_slots], test.lengths[d_idx, d_slots],
                               zdiv, device).cpu() if d_idx else torch.zeros(0, DIVERSITY_NOISES, 3, 64, 64)
    real = to_float(center_crop(test.images, 64))
    pairs = {name: random_pairs(y_test, REAL_PAIRS, same, seed=4) for name, same in (("same", True), ("any", False))}
    r["ms_ssim_same_caption"] = _entry(
        ms_ssim_diversity, div, (-1.0, 1.0), n_captions=len(d_idx), samples_per_caption=DIVERSITY_NOISES,
        real_reference_same_class=_unavailable(ms_ssim_diversity, real[pairs["same"]], (-1.0, 1.0)),
        real_reference_any=_unavailable(ms_ssim_diversity, real[pairs["any"]], (-1.0, 1.0)))

    # 5) the blocky pattern: edges on the generator's upsampling grid (samples.npz's images vs the real test images)
    r["grid_contrast"] = _entry(grid_contrasts, fake, n=len(fake),
                                real_reference=_unavailable(grid_contrasts, center_crop(test.images, 64)))
    # 6) seen-class pull: kNN class among the real images of *all* the run's classes (encoder space) of the text
    # prior's guesses and of the generated images, for the test captions above and held-out train-class captions
    v_idx, v_slots = val_captions(data.val)
    v_tok, v_len, v_labels = data.val.tokens[v_idx, v_slots], data.val.lengths[v_idx, v_slots], data.val.labels[v_idx]
    fake_v = _generate(nets, v_tok, v_len, 1, zd, seed=6, device=device, truncation=psi)

    def prior(tok, ln) -> np.ndarray:
        return text.predict_representation(text(tok.to(device), ln.to(device))).float().cpu().numpy()
    among_all = lambda q, y: _unavailable(class_consistency, q, y, feats, labels, k=k)  # noqa: E731
    r["class_consistency_all_classes"] = {
        "prior_test_captions": among_all(prior(s_tok, s_len), test.labels[img_idx].numpy()),
        "prior_train_captions": among_all(prior(v_tok, v_len), v_labels.numpy()),
        "generated_test_captions": among_all(enc_fake, s_labels),
        "generated_train_captions": among_all(embed_images(nets.encoder, fake_v, 64, device), v_labels.numpy()),
        "chance": 1.0 / max(1, len(set(labels.tolist())))}

    # 7) the judge (metrics/judge.py): recognised among all cached classes / the run's / the set's
    if isinstance(judge, dict):
        r["recognised_by_judge"] = judge
    else:
        j, j_images, j_labels = judge
        sets = {"test_captions": (fake, s_labels), "test_captions_own_photo_representation": (own, s_labels),
                "train_captions": (fake_v, v_labels.numpy())}
        r["recognised_by_judge"] = _unavailable(judge_report, j, sets, j_images, j_labels,
                                                data.train_classes + data.test_classes)
    return r, fake, (s_labels, s_caps)


@torch.no_grad()
def evaluate(nets, data, cfg, out_dir: Path, device="cpu", log=print, spec: EvaluatorSpec = EvaluatorSpec(),
             judge_spec: EvaluatorSpec | None = JUDGE_SPEC) -> dict:
    """Compute every metric for `nets` (generator = EMA weights) on `data`; write eval files to out_dir.
    The judge (metrics/judge.py, trained on every image of cfg.data.cache) is kept beside the cache;
    judge_spec None skips it."""
    from training.networks import param_table
    t0 = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ec, size = cfg.eval, cfg.data.image_size
    for _, m in nets.items():
        m.eval()
    allset = data.all_images()
    labels = allset.labels.numpy()
    is_test = np.isin(labels, data.test_classes)
    feats = embed_images(nets.encoder, allset.images, size, device)
    real_nhwc = center_crop_hwc(allset.images, size)
    # one BLAS thread for sklearn: multithreaded L-BFGS is up to 50x slower when cores are shared
    with threadpool_limits(1, user_api="blas"):
        report = {"encoder": encoder_report(feats, labels, is_test, k=ec.knn_k)}
        log("encoder kNN: " + ", ".join(f"{g}={report['encoder'][g].get('knn_acc')}" for g in ("all", "train", "test")))
        report["baselines"] = {
            "color_histogram": encoder_report(color_histogram_features(real_nhwc), labels, is_test, k=ec.knn_k),
            "random_cnn": encoder_report(random_cnn_features(real_nhwc, seed=0), labels, is_test, k=ec.knn_k)}

    tr_set = data.train_class_images()
    ev, cached = None, False
    try:
        ev, cached = load_or_train(out_dir / "evaluator.pt", tr_set.images, tr_set.labels.numpy(), spec, device, log)
        report["evaluator"] = {k: v for k, v in ev.info.items() if k != "train_seconds"}
        report["evaluator"]["spec"] = asdict(spec)
    except ValueError as e:
        report["evaluator"] = {"unavailable": str(e)}
    judge, judge_cached, judge_arg = None, False, {"unavailable": "skipped (judge_spec=None)"}
    if judge_spec is not None:
        try:
            judge, judge_cached, (j_images, j_labels) = load_judge(Path(cfg.data.cache), judge_spec, device, log)
            judge_arg = (judge, j_images, j_labels)
        except (ValueError, OSError) as e:
            judge_arg = {"unavailable": f"{type(e).__name__}: {e}"}
    with threadpool_limits(1, user_api="blas"):
        gen_report, fake, (s_labels, s_caps) = generation_report(nets, data, cfg, feats, labels, is_test, ev, tr_set,
                                                                 device, log, judge=judge_arg)
    report["generation"] = gen_report
    report["params"] = {row["network"]: row["total_params"] for row in param_table(nets)}
    report["param_table"] = param_table(nets)
    report["split"] = data.split_record()
    report["notes"] = {
        "kid": "KID is unbiased; at a few hundred images it is the more reliable of FID/KID (FID is biased upwards "
               "at small N). Compare each value with its real-vs-real floor, computed at the same sample sizes.",
        "evaluator": "FID/KID/recognition use an evaluation CNN trained from scratch on train-class images only "
                     "(metrics/evaluator.py); *_encoder metrics use the project's own source encoder.",
        "judge": "recognised_by_judge uses a CNN trained from scratch on every cached image with its label, test "
                 "classes included (metrics/judge.py): evaluation only, the stand-in for an external classifier."}
    report["runtime"] = {"evaluator_cached": cached, "evaluator_train_seconds": ev.info.get("train_seconds") if ev
                         else None, "judge_cached": judge_cached,
                         "judge_train_seconds": judge.info.get("train_seconds") if judge else None,
                         "seconds": time.time() - t0}

    np.savez_compressed(out_dir / "embeddings.npz", features=feats.astype(np.float32), labels=labels,
                        is_test_class=is_test, image_names=np.array(allset.names))
    np.savez_compressed(out_dir / "samples.npz", images=fake.permute(0, 2, 3, 1).numpy(), labels=s_labels,
                        captions=s_caps)
    with open(out_dir / "metrics.json", "w") as f:
        json.dump(report, f, indent=2, default=float)
    g = report["generation"]
    log(f"generation: KID(evaluator) {g['kid_evaluator'].get('value')} (floor {g['kid_evaluator'].get('floor')}), "
        f"class consistency {g['class_consistency_encoder_knn']}, eval {report['runtime']['seconds']:.1f}s")
    return report


if __name__ == "__main__":
    from .report import main
    sys.exit(main())
