"""The metric families of the evaluation, each a function of one `EvalContext` returning a flat dict of report
entries (every key is documented in evaluation/report.py). Registered in the order the report lists them."""
from __future__ import annotations

import numpy as np
import torch

from data_utils.augment import center_crop, to_float
from metrics.alignment import class_consistency, r_precision
from metrics.baselines import color_histogram_features, random_cnn_features
from metrics.colour import COLOURS, colour_agreement
from metrics.diversity import ms_ssim_diversity, random_pairs
from metrics.encoder import encoder_report
from metrics.grid import grid_contrasts
from models.inference import embed_images, generate_from_tokens, sample_noise

from .context import NO_EVALUATOR, EvalContext, entry, fid_kid_vs_floor, one_caption_each, test_captions, unavailable
from .evaluator import stratified_holdout
from .judge import judge_report
from .registry import register_metric

DIVERSITY_NOISES, DIVERSITY_CAPTIONS_PER_CLASS, REAL_PAIRS = 4, 2, 200


@register_metric("encoder", section="encoder")
def encoder_metrics(ctx: EvalContext) -> dict:
    """kNN, linear probe, silhouette and k-means NMI of the source encoder on all / train / test classes."""
    return encoder_report(ctx.feats, ctx.labels, ctx.is_test, k=ctx.cfg.eval.knn_k)


@register_metric("baselines", section="baselines")
def baselines(ctx: EvalContext) -> dict:
    """The same four numbers for colour histograms and for a randomly initialised CNN."""
    real = center_crop(ctx.all_images.images, ctx.cfg.data.image_size).permute(0, 2, 3, 1).numpy()
    k = ctx.cfg.eval.knn_k
    return {"color_histogram": encoder_report(color_histogram_features(real), ctx.labels, ctx.is_test, k=k),
            "random_cnn": encoder_report(random_cnn_features(real, seed=0), ctx.labels, ctx.is_test, k=k)}


def _consistency(ctx: EvalContext, images: torch.Tensor, enc_feats: np.ndarray) -> tuple:
    """Class consistency of generated images (and their encoder features) with the sample labels among the 5
    test classes: (encoder kNN, evaluator kNN)."""
    k, y = ctx.cfg.eval.knn_k, ctx.samples.labels
    f_test, y_test = ctx.feats[ctx.is_test], ctx.labels[ctx.is_test]
    return (unavailable(class_consistency, enc_feats, y, f_test, y_test, k=k),
            unavailable(class_consistency, ctx.evaluator.features(images), y, ctx.test_evaluator_features, y_test,
                        k=k) if ctx.evaluator else NO_EVALUATOR)


@register_metric("class_consistency")
def class_consistency_metrics(ctx: EvalContext) -> dict:
    """Which of the 5 unseen classes the generated images land nearest to, from the text prior's guess and from the
    caption's own photo's representation, beside real photos of half B among half A."""
    out = {"n_generated": len(ctx.samples.images), "truncation": ctx.cfg.eval.truncation}
    out["class_consistency_encoder_knn"], out["class_consistency_evaluator_knn"] = _consistency(
        ctx, ctx.samples.images, ctx.samples_features)
    own = ctx.own_photo_samples
    out["class_consistency_own_photo_representation"] = dict(zip(("encoder_knn", "evaluator_knn"),
                                                                 _consistency(ctx, own, ctx.embed(own))))
    k, (half_a, _) = ctx.cfg.eval.knn_k, ctx.halves
    f_test, y_test, e_test = ctx.feats[ctx.is_test], ctx.labels[ctx.is_test], ctx.test_evaluator_features
    b = np.asarray(ctx.half_b_samples.idx)
    out["class_consistency_reference"] = {
        "chance": 1.0 / max(1, len(ctx.data.test_classes)),
        "real_encoder_knn": unavailable(class_consistency, f_test[b], y_test[b], f_test[half_a], y_test[half_a], k=k),
        "real_evaluator_knn": unavailable(class_consistency, e_test[b], y_test[b], e_test[half_a], y_test[half_a],
                                          k=k) if ctx.evaluator else NO_EVALUATOR}
    return out


@register_metric("fid_kid")
def fid_kid(ctx: EvalContext) -> dict:
    """FID / KID of one fake per caption of real half B against half A, in the encoder's and the evaluator's
    space, each beside its real-vs-real floor."""
    half_a, fakes = ctx.halves[0], ctx.half_b_samples.images
    out = {}
    out["fid_encoder"], out["kid_encoder"] = fid_kid_vs_floor(ctx.feats[ctx.is_test], half_a, ctx.embed(fakes))
    out["fid_evaluator"], out["kid_evaluator"] = (
        fid_kid_vs_floor(ctx.test_evaluator_features, half_a, ctx.evaluator.features(fakes)) if ctx.evaluator
        else (NO_EVALUATOR, NO_EVALUATOR))
    return out


@register_metric("r_precision")
def r_precision_metric(ctx: EvalContext) -> dict:
    """R-precision in the image-text space of stage 1 (image embeddings before the whitening)."""
    hb, text, dev = ctx.half_b_samples, ctx.nets.text_encoder, ctx.device
    t_emb = (text.embed(text(hb.tokens.to(dev), hb.lengths.to(dev))).cpu().numpy() if len(hb.tokens)
             else np.zeros((0, 1)))
    shared_fake = ctx.embed(hb.images, whitened=False)
    real = ctx.data.test.images[torch.as_tensor(np.asarray(hb.idx), dtype=torch.long)]
    shared_real = embed_images(ctx.nets.encoder, real, ctx.cfg.data.image_size, dev, whitened=False)
    cand = min(100, len(hb.idx))
    return {"r_precision": entry(r_precision, shared_fake, t_emb, cand, candidates=cand, chance=1 / max(cand, 1),
                                 n=len(hb.idx), real_reference=unavailable(r_precision, shared_real, t_emb, cand))}


@register_metric("recognised_train_class")
def recognised_train_class(ctx: EvalContext) -> dict:
    """Recognised as its (train) class by the evaluator: captions of the evaluator's hold-out images."""
    ev, tr_set = ctx.evaluator, ctx.train_class_images
    if not ev:
        return {"recognised_train_class": NO_EVALUATOR}
    if ev.info.get("holdout_acc") is None:
        return {"recognised_train_class": {"unavailable": "the evaluator has no hold-out images"}}
    hold = np.flatnonzero(stratified_holdout(tr_set.labels.numpy(), ev.spec.holdout_fraction, ev.spec.seed))
    h_idx, h_slots = one_caption_each(tr_set, hold.tolist(), torch.Generator().manual_seed(3))
    fake = ctx.generate(tr_set.tokens[h_idx, h_slots], tr_set.lengths[h_idx, h_slots], 1, seed=3)
    pred = ev.features_and_predictions(fake)[1]
    return {"recognised_train_class": {"value": float(np.mean(pred == tr_set.labels[h_idx].numpy())),
                                       "real_reference": ev.info["holdout_acc"], "chance": ev.info["chance"],
                                       "n": len(h_idx)}}


@register_metric("diversity")
def diversity(ctx: EvalContext) -> dict:
    """MS-SSIM between samples of one caption, beside real test-class photos of one class and of any class."""
    test, psi = ctx.data.test, ctx.cfg.eval.truncation
    d_idx, d_slots = test_captions(test, DIVERSITY_CAPTIONS_PER_CLASS, seed=1)
    z = sample_noise(DIVERSITY_NOISES, ctx.cfg.model.noise_dim, seed=1, truncation=psi)
    div = generate_from_tokens(ctx.nets.text_encoder, ctx.nets.generator, test.tokens[d_idx, d_slots],
                               test.lengths[d_idx, d_slots], z, ctx.device).cpu() if d_idx else \
        torch.zeros(0, DIVERSITY_NOISES, 3, 64, 64)
    real, y_test = to_float(ctx.real_test_images()), ctx.labels[ctx.is_test]
    pairs = {name: random_pairs(y_test, REAL_PAIRS, same, seed=4) for name, same in (("same", True), ("any", False))}
    return {"ms_ssim_same_caption": entry(
        ms_ssim_diversity, div, (-1.0, 1.0), n_captions=len(d_idx), samples_per_caption=DIVERSITY_NOISES,
        real_reference_same_class=unavailable(ms_ssim_diversity, real[pairs["same"]], (-1.0, 1.0)),
        real_reference_any=unavailable(ms_ssim_diversity, real[pairs["any"]], (-1.0, 1.0)))}


@register_metric("grid_contrast")
def grid_contrast(ctx: EvalContext) -> dict:
    """The blocky pattern: edges on the generator's upsampling grid (samples.npz's images vs the real test images)."""
    fake = ctx.samples.images
    return {"grid_contrast": entry(grid_contrasts, fake, n=len(fake),
                                   real_reference=unavailable(grid_contrasts, ctx.real_test_images()))}


@register_metric("seen_class_pull")
def seen_class_pull(ctx: EvalContext) -> dict:
    """kNN class among the real images of *all* the run's classes (encoder space) of the text prior's guesses and
    of the generated images, for the test captions and for held-out train-class captions."""
    text, dev, k, s, v = ctx.nets.text_encoder, ctx.device, ctx.cfg.eval.knn_k, ctx.samples, ctx.val_samples

    def prior(tok, ln) -> np.ndarray:
        return text.predict_representation(text(tok.to(dev), ln.to(dev))).float().cpu().numpy()
    among_all = lambda q, y: unavailable(class_consistency, q, y, ctx.feats, ctx.labels, k=k)  # noqa: E731
    return {"class_consistency_all_classes": {
        "prior_test_captions": among_all(prior(s.tokens, s.lengths), ctx.data.test.labels[s.idx].numpy()),
        "prior_train_captions": among_all(prior(v.tokens, v.lengths), v.labels),
        "generated_test_captions": among_all(ctx.samples_features, s.labels),
        "generated_train_captions": among_all(ctx.embed(v.images), v.labels),
        "chance": 1.0 / max(1, len(set(ctx.labels.tolist())))}}


@register_metric("judge")
def judge(ctx: EvalContext) -> dict:
    """The judge (evaluation/judge.py): recognised among all cached classes / the run's / the set's."""
    if isinstance(ctx.judge, dict):
        return {"recognised_by_judge": ctx.judge}
    j, j_images, j_labels = ctx.judge
    sets = {"test_captions": (ctx.samples.images, ctx.samples.labels),
            "test_captions_own_photo_representation": (ctx.own_photo_samples, ctx.samples.labels),
            "train_captions": (ctx.val_samples.images, ctx.val_samples.labels)}
    return {"recognised_by_judge": unavailable(judge_report, j, sets, j_images, j_labels,
                                               ctx.data.train_classes + ctx.data.test_classes)}


@register_metric("caption_colour")
def caption_colour(ctx: EvalContext) -> dict:
    """Of samples.npz's captions that name one colour (metrics/colour.py), how often the generated image's dominant
    central colour is that colour, beside the same rate on each caption's own real photo (centre 64 px)."""
    s, k = ctx.samples, ctx.cfg.eval.samples_per_caption
    real = ctx.real_test_images()[torch.as_tensor(np.repeat(np.asarray(s.idx, dtype=np.int64), k))]
    fake = unavailable(colour_agreement, s.captions, s.images)
    if "unavailable" in fake:
        return {"caption_colour": fake}
    ref = unavailable(colour_agreement, s.captions, real)  # the same captions: the same colours named
    real_per = ref.get("per_colour", {})
    per = {c: {**p, "agreed_real": real_per.get(c, {}).get("agreed")} for c, p in fake["per_colour"].items()}
    return {"caption_colour": {"value": fake["value"], "real_reference": ref.get("value", ref), "n": fake["n"],
                               "chance": 1.0 / len(COLOURS), "per_colour": per}}
