"""The evaluation table (metric | value | baseline/floor | what good looks like) and the sweep score.

metrics.json (written by evaluation.evaluate.evaluate); every number has its reference beside it:
  encoder/{all,train,test}: knn_acc, linear_acc, silhouette, nmi, n, n_classes (source encoder)
  baselines/{color_histogram,random_cnn}/{all,train,test}: the same four for training-free features
  evaluator: n_classes, n_train, n_holdout, holdout_acc, chance, feature_dim, spec (the evaluation CNN)
  generation: n_generated (= samples.npz rows); truncation (the noise scale of every sample; 1 = as trained);
    class_consistency_{encoder,evaluator}_knn (float) + class_consistency_reference {chance, real_*_knn};
    class_consistency_own_photo_representation {encoder_knn, evaluator_knn}: the same captions and noise with
    the representation of each caption's own photo instead of the text prior's guess (prior vs generator; a
    generator trained on the prior's guesses only never saw such representations);
    {fid,kid}_{evaluator,encoder}: {value, floor, n_real, n_fake (+ std, floor_std, subset_size for KID)};
    recognised_train_class {value, real_reference, chance, n}; r_precision {value, real_reference,
    candidates, chance, n}; ms_ssim_same_caption {value, real_reference_same_class, real_reference_any, ...};
    grid_contrast {value, real_reference: {"2", "4", "8": ratio}, n}: edges across the 2/4/8-px grid lines over
    edges elsewhere, samples.npz's images vs the real test images (metrics/grid.py; 1 = no grid)
    class_consistency_all_classes {prior_test_captions, prior_train_captions, generated_test_captions,
    generated_train_captions, chance}: kNN class, among the real images of all the run's classes (encoder space,
    the caption's own photo among them), of the text prior's guesses and of the generated images, for the
    test captions of samples.npz and for captions of held-out train-class photos (the seen-class pull);
    recognised_by_judge {test_captions, test_captions_own_photo_representation, train_captions: {value,
    real_reference, chance: each {all, run, own}: rate; n, n_real}; judge}: how often the judge (metrics/judge.py:
    a CNN trained on every cached image with its label, evaluation only) classifies images generated from
    test-class captions (samples.npz's; then the same captions and noise with each caption's own photo's
    representation) / from held-out train-class captions as the caption's class, among all cached / the run's /
    that set's classes, beside its held-out real photos of those classes
    caption_colour {value, real_reference, n, chance, per_colour {colour: {n, agreed, agreed_real}}}: of the
    samples whose caption names exactly one colour (metrics/colour.py: red, pink, purple, blue, yellow, orange,
    white), the share whose dominant central colour is that colour, beside the same rate on each caption's own
    real photo (the rules' ceiling); n = such samples, chance = 1 / 7
  params, param_table (trainable_params: what the GAN-only epochs train), split, notes, runtime (timings and
    whether the evaluator / judge were read from their cache; the only non-deterministic part)
Any metric that cannot be computed is {"unavailable": reason} instead of a number.
"""
from __future__ import annotations

import math
import sys

GROUPS = ("all", "train", "test")
ENCODER_METRICS = {"knn_acc": ("kNN top-1", "higher; above both baselines"),
                   "linear_acc": ("linear probe", "higher; above both baselines"),
                   "silhouette": ("silhouette (cosine)", "higher (-1..1); above baselines"),
                   "nmi": ("k-means NMI", "higher (0..1); above baselines")}


def fmt(x, digits: int = 3) -> str:
    """A value as text, for the evaluate table and the notebook's tables: floats with `digits` decimals
    (scientific below 10**-digits), ints with thousands separators, a [mean, std] pair as "mean ± std",
    {"unavailable": r} as "n/a (r)", None as "n/a"."""
    if isinstance(x, dict) and "unavailable" in x:
        return f"n/a ({x['unavailable']})"
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.{digits}f}" if abs(x) >= 10 ** -digits or x == 0 else f"{x:.{digits - 1}e}"
    if isinstance(x, (list, tuple)):
        if len(x) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
            return f"{fmt(float(x[0]), digits)} ± {fmt(float(x[1]), digits)}"
        return ", ".join(fmt(v, digits) for v in x)
    return str(x)


def _get(d: dict, key: str):
    v = d.get(key) if isinstance(d, dict) else None
    return v if not (isinstance(d, dict) and "unavailable" in d) else d


def _slashed(d, digits: int = 2) -> str:
    """{"2": x, "4": y, "8": z} (or any dict of numbers) -> "x / y / z" (`digits` decimals, in the dict's order);
    anything else as fmt writes it."""
    if isinstance(d, dict) and d and "unavailable" not in d:
        return " / ".join(fmt(v, digits) for v in d.values())
    return fmt(d)


def table_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """metrics.json dict -> rows (metric, value, baseline/floor, what good looks like)."""
    rows = []
    enc, base = report.get("encoder", {}), report.get("baselines", {})
    for key, (name, good) in ENCODER_METRICS.items():
        for g in GROUPS:
            r = enc.get(g, {})
            ref = " / ".join(fmt(base.get(b, {}).get(g, {}).get(key)) for b in ("color_histogram", "random_cnn"))
            val = r.get(key) if r.get(key) is not None else {"unavailable": r.get("unavailable", "?")}
            rows.append((f"encoder {name}, {g} ({r.get('n_classes', '?')} classes)", fmt(val),
                         f"colour hist / random CNN: {ref}", good))
    ev = report.get("evaluator", {})
    rows.append(("evaluator held-out accuracy (train classes)", fmt(_get(ev, "holdout_acc")),
                 f"chance {fmt(ev.get('chance'))}", "well above chance (else FID/KID space is weak)"))
    gen = report.get("generation", {})
    for space in ("evaluator", "encoder"):
        k, f = gen.get(f"kid_{space}", {}), gen.get(f"fid_{space}", {})
        if "unavailable" in k:
            rows.append((f"KID, {space} space (test classes)", fmt(k), "", "lower; ~ floor"))
        else:
            rows.append((f"KID, {space} space (test classes)", f"{fmt(k['value'], 4)} ± {fmt(k['std'], 4)}",
                         f"real floor {fmt(k['floor'], 4)} ± {fmt(k['floor_std'], 4)}",
                         "lower; ~ floor = as real (most reliable here)"))
        rows.append((f"FID, {space} space (test classes, n={f.get('n_fake', '?')})", fmt(_get(f, "value")),
                     f"real floor {fmt(_get(f, 'floor'))}", "lower; ~ floor (biased at small n)"))
    rec = gen.get("recognised_train_class", {})
    rows.append(("recognised as its class by the evaluator (train-class captions)", fmt(_get(rec, "value")),
                 f"real held-out {fmt(_get(rec, 'real_reference'))}, chance {fmt(_get(rec, 'chance'))}",
                 "higher; close to real"))
    ref = gen.get("class_consistency_reference", {})
    for space in ("encoder", "evaluator"):
        rows.append((f"class consistency, {space} kNN (test classes)",
                     fmt(gen.get(f"class_consistency_{space}_knn")),
                     f"real {fmt(ref.get(f'real_{space}_knn'))}, chance {fmt(ref.get('chance'))}",
                     "higher; close to real"))
    jr = gen.get("recognised_by_judge")
    if jr is not None:  # absent in reports written before the judge existed
        for key, what in (("test_captions", "test-class captions"),
                          ("test_captions_own_photo_representation", "the same from the own photo's r"),
                          ("train_captions", "held-out train-class captions")):
            r = _get(jr, key)
            n = f" (n={fmt(r['n'])})" if isinstance(r, dict) and "n" in r else ""
            rows.append((f"recognised by the judge among all / run / own classes, {what}{n}",
                         _slashed(_get(r, "value"), 3),
                         f"real held-out {_slashed(_get(r, 'real_reference'), 3)} (n={fmt(_get(r, 'n_real'))}), "
                         f"chance {_slashed(_get(r, 'chance'), 3)}",
                         "higher; close to real (an external classifier's question)"))
    ca = gen.get("class_consistency_all_classes")
    if ca is not None:  # absent in reports written before it existed
        pair = lambda split: f"{fmt(_get(ca, f'prior_{split}'))} / {fmt(_get(ca, f'generated_{split}'))}"  # noqa: E731
        rows.append(("kNN class among all the run's classes (encoder), text prior's guess / generated image, "
                     "test-class captions", pair("test_captions"),
                     f"held-out train-class captions {pair('train_captions')}, chance {fmt(_get(ca, 'chance'))}",
                     "close to the train-class captions'; below = unseen captions pulled to seen classes"))
    own = gen.get("class_consistency_own_photo_representation", {})
    for space in ("encoder", "evaluator"):
        rows.append((f"  the same, from the own photo's r ({space} kNN)",
                     fmt(_get(own, f"{space}_knn")),
                     f"from the text prior: {fmt(gen.get(f'class_consistency_{space}_knn'))}",
                     "above the prior's = the prior loses class; both low = the generator does; "
                     "below = G learned from the prior's guesses only"))
    rp = gen.get("r_precision", {})
    rows.append((f"R-precision ({fmt(_get(rp, 'candidates'))} candidates)", fmt(_get(rp, "value")),
                 f"real {fmt(_get(rp, 'real_reference'))}, chance {fmt(_get(rp, 'chance'))}",
                 "higher; close to real"))
    ms = gen.get("ms_ssim_same_caption", {})
    rows.append(("MS-SSIM between samples of one caption", fmt(_get(ms, "value")),
                 f"real same class {fmt(_get(ms, 'real_reference_same_class'))}, any {fmt(_get(ms, 'real_reference_any'))}",
                 "lower = more diverse; ~ real; near 1 = collapse"))
    gc = gen.get("grid_contrast")
    if gc is not None:  # absent in reports written before it existed
        rows.append(("upsampling-grid contrast (2 / 4 / 8 px)", _slashed(_get(gc, "value")),
                     f"real {_slashed(_get(gc, 'real_reference'))}",
                     "~ real (1); above = blocky pattern on the generator's grid"))
    cc = gen.get("caption_colour")
    if cc is not None:  # absent in reports written before it existed
        n = f" (n={fmt(cc['n'])})" if "n" in cc else ""
        rows.append((f"caption colour followed (captions naming one colour){n}", fmt(_get(cc, "value")),
                     f"real photos {fmt(_get(cc, 'real_reference'))}, chance {fmt(_get(cc, 'chance'))}",
                     "higher; close to real"))
    return rows


def _judge_rate(jr, key: str, among: str) -> tuple[str, str]:
    r = _get(jr, key)  # None when jr is absent; jr itself when it is {"unavailable": reason}
    if not isinstance(r, dict) or "unavailable" in r:
        return fmt(r), ""
    return (fmt((r.get("value") or {}).get(among)),
            f"real photos {fmt((r.get('real_reference') or {}).get(among))}, "
            f"chance {fmt((r.get('chance') or {}).get(among))}")


def headline_rows(report: dict) -> list[tuple[str, str, str]]:
    """metrics.json dict -> the compact table (metric, value, reference) shown in the README and the notebook:
    the encoder's kNN, KID, class consistency, the judge's three questions, diversity, the grid and the caption's
    colour, each beside what real photos (or chance) score."""
    enc, base, gen = report.get("encoder", {}), report.get("baselines", {}), report.get("generation", {})
    knn = lambda src: " / ".join(fmt((src.get(g) or {}).get("knn_acc")) for g in ("all", "test"))  # noqa: E731
    n_all, n_test = ((enc.get(g) or {}).get("n_classes") for g in ("all", "test"))
    chance = " / ".join(fmt(1 / n) if n else "n/a" for n in (n_all, n_test))
    n_all, n_test = n_all or "?", n_test or "?"
    rows = [(f"source encoder kNN top-1, all {n_all} / {n_test} unseen classes", knn(enc),
             f"colour histogram {knn(base.get('color_histogram', {}))}, chance {chance}")]
    k = gen.get("kid_evaluator", {})
    rows.append(("KID, evaluation network's features, unseen classes", fmt(_get(k, "value"), 4),
                 f"real vs real {fmt(_get(k, 'floor'), 4)}"))
    ref = gen.get("class_consistency_reference", {})
    rows.append(("class consistency (evaluator kNN), unseen classes", fmt(gen.get("class_consistency_evaluator_knn")),
                 f"real photos {fmt(ref.get('real_evaluator_knn'))}, chance {fmt(ref.get('chance'))}"))
    jr = gen.get("recognised_by_judge")
    n_judge = ((jr.get("judge") or {}).get("n_classes") if isinstance(jr, dict) else None) or "?"
    for key, among, what in (
            ("test_captions", "own", f"judge: right class among the {n_test} unseen, unseen captions"),
            ("test_captions", "all", f"judge: right class among all {n_judge}, unseen captions"),
            ("train_captions", "all", f"judge: right class among all {n_judge}, held-out seen-class captions")):
        rows.append((what, *_judge_rate(jr, key, among)))
    ms = gen.get("ms_ssim_same_caption", {})
    rows.append(("MS-SSIM between samples of one caption (lower = more diverse)", fmt(_get(ms, "value")),
                 f"real photos of one class {fmt(_get(ms, 'real_reference_same_class'))}"))
    gc = gen.get("grid_contrast", {})
    rows.append(("upsampling-grid contrast at 2 px (1 = no grid)", fmt((_get(gc, "value") or {}).get("2"), 2),
                 f"real photos {fmt((_get(gc, 'real_reference') or {}).get('2'), 2)}"))
    cc = gen.get("caption_colour")
    if cc is not None:
        rows.append(("caption's colour followed (captions naming one colour)", fmt(_get(cc, "value")),
                     f"real photos {fmt(_get(cc, 'real_reference'))}, chance {fmt(_get(cc, 'chance'))}"))
    return rows


def print_table(report: dict, file=None) -> None:
    """Print ``table_rows(report)`` as a rich table (plain text when not a terminal)."""
    from rich.console import Console
    from rich.table import Table
    out = file or sys.stdout
    console = Console(file=out, width=None if out.isatty() else 170)
    t = Table(title="evaluation (nothing pretrained; references beside every number)")
    for col in ("metric", "value", "baseline / floor", "what good looks like"):
        t.add_column(col, overflow="fold")
    for row in table_rows(report):
        t.add_row(*row)
    console.print(t)
    console.print("KID is the more reliable of FID/KID at this sample size; FID is biased upwards at small n.")


def score(report: dict) -> float | None:
    """Sweep objective (higher is better): mean of encoder kNN over all 25 classes and the
    class consistency of text-only generations for unseen classes."""
    knn = report.get("encoder", {}).get("all", {}).get("knn_acc")
    cons = report.get("generation", {}).get("class_consistency_encoder_knn")
    if not isinstance(knn, float) or not isinstance(cons, float):
        return None
    return 0.5 * (knn + cons)
