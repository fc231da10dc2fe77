"""The metric families of the evaluation, each a function of one `EvalContext` returning a flat dict of report
entries, registered with the table rows that show them (evaluation/registry.py). Registered in the order the
evaluation table lists them; `headline` orders the compact table (README, notebook)."""
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
from .registry import Row, register_metric, register_rows

DIVERSITY_NOISES, DIVERSITY_CAPTIONS_PER_CLASS, REAL_PAIRS = 4, 2, 200
ENCODER_METRICS = {"knn_acc": ("kNN top-1", "higher; above both baselines"),
                   "linear_acc": ("linear probe", "higher; above both baselines"),
                   "silhouette": ("silhouette (cosine)", "higher (-1..1); above baselines"),
                   "nmi": ("k-means NMI", "higher (0..1); above baselines")}
GEN = "generation"
JUDGE = f"{GEN}.recognised_by_judge"


def _knn_reference(report: dict) -> str:
    """The compact table's reference of the encoder's kNN: the colour histogram's and chance, all / unseen classes."""
    def num(x) -> str:
        return f"{x:.3f}" if isinstance(x, float) else "n/a"
    hist = (report.get("baselines") or {}).get("color_histogram") or {}
    n = [((report.get("encoder") or {}).get(g) or {}).get("n_classes") for g in ("all", "test")]
    return (f"colour histogram {' / '.join(num((hist.get(g) or {}).get('knn_acc')) for g in ('all', 'test'))}, "
            f"chance {' / '.join(num(1 / k) if isinstance(k, int) and k else 'n/a' for k in n)}")


@register_metric("encoder", section="encoder", rows=[
    *(Row(f"encoder {name}, {g} ({{encoder.{g}.n_classes}} classes)", f"{{encoder.{g}.{key}}}",
          f"colour hist / random CNN: {{baselines.color_histogram.{g}.{key}}} / {{baselines.random_cnn.{g}.{key}}}",
          good) for key, (name, good) in ENCODER_METRICS.items() for g in ("all", "train", "test")),
    Row("source encoder kNN top-1, all {encoder.all.n_classes} / {encoder.test.n_classes} unseen classes",
        "{encoder.all.knn_acc} / {encoder.test.knn_acc}",
        _knn_reference,
        keys={"eval/knn_all": "encoder.all.knn_acc", "eval/knn_test": "encoder.test.knn_acc"}, goal="max",
        headline=1)])
def encoder_metrics(ctx: EvalContext) -> dict:
    """kNN, linear probe, silhouette and k-means NMI of the source encoder on all / train / test classes, with n
    (images) and n_classes."""
    return encoder_report(ctx.feats, ctx.labels, ctx.is_test, k=ctx.cfg.eval.knn_k)


@register_metric("baselines", section="baselines")
def baselines(ctx: EvalContext) -> dict:
    """The same four numbers for colour histograms and for a randomly initialised CNN."""
    real = center_crop(ctx.all_images.images, ctx.cfg.data.image_size).permute(0, 2, 3, 1).numpy()
    k = ctx.cfg.eval.knn_k
    return {"color_histogram": encoder_report(color_histogram_features(real), ctx.labels, ctx.is_test, k=k),
            "random_cnn": encoder_report(random_cnn_features(real, seed=0), ctx.labels, ctx.is_test, k=k)}


register_rows([Row("evaluator held-out accuracy (train classes)", "{evaluator.holdout_acc}",  # evaluation/evaluate.py
                   "chance {evaluator.chance}", "well above chance (else FID/KID space is weak)")])


def _consistency(ctx: EvalContext, images: torch.Tensor, enc_feats: np.ndarray) -> tuple:
    """Class consistency of generated images (and their encoder features) with the sample labels among the 5
    test classes: (encoder kNN, evaluator kNN)."""
    k, y = ctx.cfg.eval.knn_k, ctx.samples.labels
    f_test, y_test = ctx.feats[ctx.is_test], ctx.labels[ctx.is_test]
    return (unavailable(class_consistency, enc_feats, y, f_test, y_test, k=k),
            unavailable(class_consistency, ctx.evaluator.features(images), y, ctx.test_evaluator_features, y_test,
                        k=k) if ctx.evaluator else NO_EVALUATOR)


CC_REF = f"{GEN}.class_consistency_reference"


@register_metric("class_consistency", rows=[
    Row("class consistency, encoder kNN (test classes)", f"{{{GEN}.class_consistency_encoder_knn}}",
        f"real {{{CC_REF}.real_encoder_knn}}, chance {{{CC_REF}.chance}}", "higher; close to real",
        keys={"eval/class_consistency": f"{GEN}.class_consistency_encoder_knn"}, goal="max"),  # half of eval/score
    Row("class consistency, evaluator kNN (test classes)", f"{{{GEN}.class_consistency_evaluator_knn}}",
        f"real {{{CC_REF}.real_evaluator_knn}}, chance {{{CC_REF}.chance}}", "higher; close to real"),
    *(Row(f"  the same, from the own photo's r ({space} kNN)",
          f"{{{GEN}.class_consistency_own_photo_representation.{space}_knn}}",
          f"from the text prior: {{{GEN}.class_consistency_{space}_knn}}",
          "above the prior's = the prior loses class; both low = the generator does; below = G learned from the "
          "prior's guesses only") for space in ("encoder", "evaluator")),
    Row("class consistency (evaluator kNN), unseen classes", f"{{{GEN}.class_consistency_evaluator_knn}}",
        f"real photos {{{CC_REF}.real_evaluator_knn}}, chance {{{CC_REF}.chance}}",
        keys={"eval/class_consistency_evaluator": f"{GEN}.class_consistency_evaluator_knn"}, goal="max", headline=3)])
def class_consistency_metrics(ctx: EvalContext) -> dict:
    """Which of the 5 unseen classes the generated images land nearest to, from the text prior's guess and from the
    caption's own photo's representation, beside real photos of half B among half A.

    n_generated (= samples.npz rows); truncation (the noise scale of every sample; 1 = as trained);
    class_consistency_{encoder,evaluator}_knn (float) + class_consistency_reference {chance, real_*_knn};
    class_consistency_own_photo_representation {encoder_knn, evaluator_knn}: the same captions and noise with the
    representation of each caption's own photo instead of the text prior's guess (prior vs generator; a generator
    trained on the prior's guesses only never saw such representations)."""
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


def _fid_kid_rows(space: str) -> list[Row]:
    kid, fid = f"{GEN}.kid_{space}", f"{GEN}.fid_{space}"
    return [Row(f"KID, {space} space (test classes)", f"{{{kid}.value:4}} ± {{{kid}.std:4}}",
                f"real floor {{{kid}.floor:4}} ± {{{kid}.floor_std:4}}",
                "lower; ~ floor = as real (most reliable here)"),
            Row(f"FID, {space} space (test classes, n={{{fid}.n_fake}})", f"{{{fid}.value}}",
                f"real floor {{{fid}.floor}}", "lower; ~ floor (biased at small n)")]


@register_metric("fid_kid", rows=[
    *_fid_kid_rows("evaluator"), *_fid_kid_rows("encoder"),
    Row("KID, evaluation network's features, unseen classes", f"{{{GEN}.kid_evaluator.value:4}}",
        f"real vs real {{{GEN}.kid_evaluator.floor:4}}", keys={"eval/kid": f"{GEN}.kid_evaluator.value"}, goal="min",
        headline=2)])
def fid_kid(ctx: EvalContext) -> dict:
    """FID / KID of one fake per caption of real half B against half A, in the encoder's and the evaluator's
    space, each beside its real-vs-real floor: {fid,kid}_{evaluator,encoder}: {value, floor, n_real, n_fake (+ std,
    floor_std, subset_size for KID)}."""
    half_a, fakes = ctx.halves[0], ctx.half_b_samples.images
    out = {}
    out["fid_encoder"], out["kid_encoder"] = fid_kid_vs_floor(ctx.feats[ctx.is_test], half_a, ctx.embed(fakes))
    out["fid_evaluator"], out["kid_evaluator"] = (
        fid_kid_vs_floor(ctx.test_evaluator_features, half_a, ctx.evaluator.features(fakes)) if ctx.evaluator
        else (NO_EVALUATOR, NO_EVALUATOR))
    return out


@register_metric("r_precision", rows=[
    Row(f"R-precision ({{{GEN}.r_precision.candidates}} candidates)", f"{{{GEN}.r_precision.value}}",
        f"real {{{GEN}.r_precision.real_reference}}, chance {{{GEN}.r_precision.chance}}", "higher; close to real")])
def r_precision_metric(ctx: EvalContext) -> dict:
    """R-precision in the image-text space of stage 1 (image embeddings before the whitening): r_precision {value,
    real_reference, candidates, chance, n}."""
    hb, text, dev = ctx.half_b_samples, ctx.nets.text_encoder, ctx.device
    t_emb = (text.embed(text(hb.tokens.to(dev), hb.lengths.to(dev))).cpu().numpy() if len(hb.tokens)
             else np.zeros((0, 1)))
    shared_fake = ctx.embed(hb.images, whitened=False)
    real = ctx.data.test.images[torch.as_tensor(np.asarray(hb.idx), dtype=torch.long)]
    shared_real = embed_images(ctx.nets.encoder, real, ctx.cfg.data.image_size, dev, whitened=False)
    cand = min(100, len(hb.idx))
    return {"r_precision": entry(r_precision, shared_fake, t_emb, cand, candidates=cand, chance=1 / max(cand, 1),
                                 n=len(hb.idx), real_reference=unavailable(r_precision, shared_real, t_emb, cand))}


@register_metric("recognised_train_class", rows=[
    Row("recognised as its class by the evaluator (train-class captions)", f"{{{GEN}.recognised_train_class.value}}",
        f"real held-out {{{GEN}.recognised_train_class.real_reference}}, chance "
        f"{{{GEN}.recognised_train_class.chance}}", "higher; close to real")])
def recognised_train_class(ctx: EvalContext) -> dict:
    """Recognised as its (train) class by the evaluator: captions of the evaluator's hold-out images:
    recognised_train_class {value, real_reference, chance, n}."""
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


MS = f"{GEN}.ms_ssim_same_caption"


@register_metric("diversity", rows=[
    Row("MS-SSIM between samples of one caption", f"{{{MS}.value}}",
        f"real same class {{{MS}.real_reference_same_class}}, any {{{MS}.real_reference_any}}",
        "lower = more diverse; ~ real; near 1 = collapse"),
    Row("MS-SSIM between samples of one caption (lower = more diverse)", f"{{{MS}.value}}",
        f"real photos of one class {{{MS}.real_reference_same_class}}", keys={"eval/ms_ssim": f"{MS}.value"},
        goal="min", headline=7)])
def diversity(ctx: EvalContext) -> dict:
    """MS-SSIM between samples of one caption, beside real test-class photos of one class and of any class:
    ms_ssim_same_caption {value, real_reference_same_class, real_reference_any, n_captions, samples_per_caption}."""
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


GC = f"{GEN}.grid_contrast"


@register_metric("grid_contrast", rows=[
    Row("upsampling-grid contrast (2 / 4 / 8 px)", f"{{{GC}.value:2}}", f"real {{{GC}.real_reference:2}}",
        "~ real (1); above = blocky pattern on the generator's grid", needs=GC),
    Row("upsampling-grid contrast at 2 px (1 = no grid)", f"{{{GC}.value.2:2}}",
        f"real photos {{{GC}.real_reference.2:2}}", keys={"eval/grid_contrast": f"{GC}.value.2"},
        headline=8)])  # no goal: good is ~ 1
def grid_contrast(ctx: EvalContext) -> dict:
    """The blocky pattern: edges on the generator's upsampling grid (samples.npz's images vs the real test images):
    grid_contrast {value, real_reference: {"2", "4", "8": ratio}, n}: edges across the 2/4/8-px grid lines over edges
    elsewhere (metrics/grid.py; 1 = no grid)."""
    fake = ctx.samples.images
    return {"grid_contrast": entry(grid_contrasts, fake, n=len(fake),
                                   real_reference=unavailable(grid_contrasts, ctx.real_test_images()))}


CA = f"{GEN}.class_consistency_all_classes"


@register_metric("seen_class_pull", rows=[
    Row("kNN class among all the run's classes (encoder), text prior's guess / generated image, test-class captions",
        f"{{{CA}.prior_test_captions}} / {{{CA}.generated_test_captions}}",
        f"held-out train-class captions {{{CA}.prior_train_captions}} / {{{CA}.generated_train_captions}}, "
        f"chance {{{CA}.chance}}", "close to the train-class captions'; below = unseen captions pulled to seen classes",
        needs=CA)])
def seen_class_pull(ctx: EvalContext) -> dict:
    """kNN class among the real images of *all* the run's classes (encoder space, the caption's own photo among
    them) of the text prior's guesses and of the generated images, for the test captions of samples.npz and for
    captions of held-out train-class photos (the seen-class pull): class_consistency_all_classes
    {prior_test_captions, prior_train_captions, generated_test_captions, generated_train_captions, chance}."""
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


def _judge_rows() -> list[Row]:
    full = [Row(f"recognised by the judge among all / run / own classes, {what}", f"{{{JUDGE}.{key}.value:3}} "
                f"(n={{{JUDGE}.{key}.n}})", f"real held-out {{{JUDGE}.{key}.real_reference:3}} "
                f"(n={{{JUDGE}.{key}.n_real}}), chance {{{JUDGE}.{key}.chance:3}}",
                "higher; close to real (an external classifier's question)", needs=JUDGE)
            for key, what in (("test_captions", "test-class captions"),
                              ("test_captions_own_photo_representation", "the same from the own photo's r"),
                              ("train_captions", "held-out train-class captions"))]
    compact = [Row(f"judge: right class among {among_text}, {what}", f"{{{JUDGE}.{key}.value.{among}}}",
                   f"real photos {{{JUDGE}.{key}.real_reference.{among}}}, chance {{{JUDGE}.{key}.chance.{among}}}",
                   keys={f"eval/judge_{key.split('_')[0]}_{among}": f"{JUDGE}.{key}.value.{among}"}, goal="max",
                   headline=place)
               for place, (key, among, among_text, what) in enumerate((
                   ("test_captions", "own", "the {encoder.test.n_classes} unseen", "unseen captions"),
                   ("test_captions", "all", f"all {{{JUDGE}.judge.n_classes}}", "unseen captions"),
                   ("train_captions", "all", f"all {{{JUDGE}.judge.n_classes}}", "held-out seen-class captions")),
                   start=4)]
    return full + compact


@register_metric("judge", rows=_judge_rows())
def judge(ctx: EvalContext) -> dict:
    """The judge (evaluation/judge.py: a CNN trained on every cached image with its label, evaluation only): how
    often it classifies images generated from test-class captions (samples.npz's; then the same captions and noise
    with each caption's own photo's representation) / from held-out train-class captions as the caption's class,
    among all cached / the run's / that set's classes, beside its held-out real photos of those classes:
    recognised_by_judge {test_captions, test_captions_own_photo_representation, train_captions: {value,
    real_reference, chance: each {all, run, own}: rate; n, n_real}; judge}."""
    if isinstance(ctx.judge, dict):
        return {"recognised_by_judge": ctx.judge}
    j, j_images, j_labels = ctx.judge
    sets = {"test_captions": (ctx.samples.images, ctx.samples.labels),
            "test_captions_own_photo_representation": (ctx.own_photo_samples, ctx.samples.labels),
            "train_captions": (ctx.val_samples.images, ctx.val_samples.labels)}
    return {"recognised_by_judge": unavailable(judge_report, j, sets, j_images, j_labels,
                                               ctx.data.train_classes + ctx.data.test_classes)}


CC = f"{GEN}.caption_colour"


@register_metric("caption_colour", rows=[
    Row("caption colour followed (captions naming one colour)", f"{{{CC}.value}} (n={{{CC}.n}})",
        f"real photos {{{CC}.real_reference}}, chance {{{CC}.chance}}", "higher; close to real", needs=CC),
    Row("caption's colour followed (captions naming one colour)", f"{{{CC}.value}}",
        f"real photos {{{CC}.real_reference}}, chance {{{CC}.chance}}", needs=CC,
        keys={"eval/caption_colour": f"{CC}.value"}, goal="max", headline=9)])
def caption_colour(ctx: EvalContext) -> dict:
    """Of samples.npz's captions that name one colour (metrics/colour.py: red, pink, purple, blue, yellow, orange,
    white), how often the generated image's dominant central colour is that colour, beside the same rate on each
    caption's own real photo (centre 64 px; the rules' ceiling): caption_colour {value, real_reference, n, chance
    = 1 / 7, per_colour {colour: {n, agreed, agreed_real}}}."""
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
