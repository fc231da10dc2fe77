"""Small tables for `analysis.ipynb`: they show as HTML in a notebook and as aligned plain text elsewhere (no pandas).
The parameter table, the encoder metric table and the other metric tables of a run's eval/metrics.json."""
from __future__ import annotations

import html

from data_utils.classes import class_name
from evaluation.report import fmt

from .figures import image_key
from .loading import flatten

# ------------------------------------------------------------------ tables


def human_bytes(n) -> str:
    """Bytes -> "12.3 MB" (powers of 1000, as file browsers show them)."""
    if n is None:
        return "–"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class Table:
    """A small table that shows as HTML in a notebook and as aligned plain text elsewhere.

    headers: column names; rows: lists of cells (already strings or values for `fmt`);
    bold: set of (row, column) cells to emphasise; title/note: text above/below the table."""

    def __init__(self, headers, rows, title: str = "", note: str = "", bold=None, align=None):
        self.headers = [str(h) for h in headers]
        self.rows = [[c if isinstance(c, str) else fmt(c) for c in r] for r in rows]
        self.title, self.note, self.bold = title, note, set(bold or ())
        self.align = align or ["left"] + ["right"] * (len(self.headers) - 1)

    def _repr_html_(self) -> str:
        e = html.escape
        cells = lambda r, i: "".join(  # noqa: E731
            f'<td style="text-align:{self.align[j]}">{"<b>" + e(c) + "</b>" if (i, j) in self.bold else e(c)}</td>'
            for j, c in enumerate(r))
        head = "".join(f'<th style="text-align:{a}">{e(h)}</th>' for h, a in zip(self.headers, self.align))
        head = f"<thead><tr>{head}</tr></thead>" if any(self.headers) else ""
        body = "".join(f"<tr>{cells(r, i)}</tr>" for i, r in enumerate(self.rows))
        title = f"<p><b>{e(self.title)}</b></p>" if self.title else ""
        note = f'<p style="font-size:smaller">{e(self.note)}</p>' if self.note else ""
        return f"{title}<table>{head}<tbody>{body}</tbody></table>{note}"

    def __repr__(self) -> str:
        cols = list(zip(self.headers, *self.rows))
        widths = [max(len(c) for c in col) for col in cols]
        line = lambda r: "  ".join(  # noqa: E731
            c.ljust(w) if a == "left" else c.rjust(w) for c, w, a in zip(r, widths, self.align))
        out = [self.title] if self.title else []
        if any(self.headers):
            out += [line(self.headers), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in self.rows] + ([self.note] if self.note else [])
        return "\n".join(out)


def key_value_table(pairs, title: str = "") -> Table:
    """(name, value) pairs -> a two-column Table."""
    return Table(["", ""], [[str(k), v] for k, v in pairs], title=title, align=["left", "left"])


def parameter_table(rows: list[dict]) -> Table:
    """Rows of `analysis.loading.parameter_rows` -> Table: total / trainable parameters, size on disk,
    parameters relative to the source encoder."""
    has_stage2 = any(r.get("trainable_gan_stage") is not None for r in rows)
    headers = ["network", "total parameters", "trainable", *(["trainable in GAN stage"] if has_stage2 else []),
               "size on disk", "÷ encoder"]
    body = [[r["network"], r["total_params"], r["trainable_params"],
             *([r.get("trainable_gan_stage")] if has_stage2 else []),
             human_bytes(r["size_on_disk_bytes"]), f"{r['total_params'] / rows[1]['total_params']:.4f}"]
            for r in rows]
    return Table(headers, body, title="Network sizes",
                 note="size on disk = bytes of the network's state_dict saved with torch.save")


# ------------------------------------------------------------------ metric tables
ENCODER_METRICS = {"knn_acc": "kNN accuracy", "linear_acc": "linear-probe accuracy",
                   "silhouette": "silhouette", "nmi": "k-means NMI"}
GROUPS = {"all": "all 25 classes", "train": "20 train classes", "test": "5 unseen test classes"}

# What a metric name means; matched against each part of a dotted key, last part first.
METRIC_NOTES = {
    "n_generated": "number of generated images evaluated",
    "class_consistency_encoder_knn": "share of generated images whose nearest real images are of the caption's "
                                     "class (higher is better)",
    "class_consistency": "generated images recognised as the caption's class (higher is better)",
    "class_consistency_own_photo_representation": "the same, generated from each caption's own photo's "
                                                  "representation instead of the text prior's guess",
    "truncation": "noise scale of the samples (1 = as in training)",
    "fid_encoder": "Fréchet distance generated vs real, source-encoder features (lower is better)",
    "kid_encoder": "kernel distance generated vs real, mean ± std over subsets (lower is better)",
    "real_floor_encoder": "real vs real (two halves of the real images): the floor a generator can reach",
    "r_precision": "is a generated image closest to its own caption among the candidates? (higher is better)",
    "ms_ssim_same_caption": "similarity of images from one caption with different noise (lower = more diverse)",
    "grid_contrast": "edges across the 2/4/8-px upsampling grid over edges elsewhere (photos ~1; above = blocky)",
    "recognised_by_judge": "share the judge (a classifier of all cached classes, evaluation only) puts in the "
                           "caption's class, among all / the run's / the set's classes (higher is better)",
    "class_consistency_all_classes": "kNN class among the real images of all the run's classes, of the text "
                                     "prior's guess or the generated image (higher is better)",
    "recognised_train_class": "generated train-class images the evaluator classifies as their class "
                              "(higher is better)",
    "fid": "Fréchet distance (lower is better)",
    "kid": "kernel inception distance (lower is better)",
    "kid_mean": "kernel distance, mean over subsets (lower is better)",
    "kid_std": "kernel distance, std over subsets",
    "real_floor": "real vs real: the floor a generator can reach",
    "accuracy": "classification accuracy (higher is better)",
    "n_per_half": "real images in each half of the real-vs-real comparison",
}


def metric_note(key: str) -> str:
    """A short explanation of a (dotted) metric key, or "" when it is not in METRIC_NOTES."""
    parts = key.split(".")
    if len(parts) > 1 and any(p.startswith("real_floor") for p in parts[:-1]):
        leaf = metric_note(parts[-1]).replace(" (lower is better)", "")
        return "real vs real floor" + (f": {leaf}" if leaf else "")
    for part in reversed(parts):
        if part in METRIC_NOTES:
            return METRIC_NOTES[part]
    for part in reversed(parts):  # e.g. fid_evaluator, kid_evaluator, real_floor_evaluator
        for stem in ("real_floor", "fid", "kid", "accuracy", "class_consistency"):
            if part.startswith(stem) or part.endswith(stem):
                return METRIC_NOTES[stem]
    return ""


def encoder_metric_table(metrics: dict) -> Table | None:
    """Encoder metrics of `eval/metrics.json` with the two baselines beside each number (best in bold);
    None when the file has no encoder section."""
    enc = metrics.get("encoder")
    if not isinstance(enc, dict):
        return None
    base = metrics.get("baselines") or {}
    names = [("source encoder (ours)", enc)] + [(b.replace("_", " "), v) for b, v in base.items() if isinstance(v, dict)]
    rows, bold = [], set()
    for g, g_label in GROUPS.items():
        if g not in enc:
            continue
        for m, m_label in ENCODER_METRICS.items():
            vals = [(src.get(g) or {}).get(m) for _, src in names]
            rows.append([f"{g_label} ({fmt((enc[g] or {}).get('n'))} images)", m_label, *vals])
            numbers = [v for v in vals if isinstance(v, (int, float))]
            if numbers:
                bold |= {(len(rows) - 1, 2 + j) for j, v in enumerate(vals) if v == max(numbers)}
    return Table(["classes", "metric", *[n for n, _ in names]], rows, bold=bold,
                 title="Source encoder: how well its embeddings separate flower classes (higher is better)",
                 note="Baselines: colour histograms of the images, and a randomly initialised (untrained) CNN. "
                      "Bold = best of the row. Labels are used only here, to score the embeddings.")


SKIP_SECTIONS = ("encoder", "baselines", "params", "param_table", "split")


def other_metric_tables(metrics: dict) -> list[Table]:
    """Every other section of `eval/metrics.json` (generation, evaluator, ...) as a Table of its leaves,
    whatever keys it holds, each with a short explanation when the name is known."""
    tables = []
    for section, value in metrics.items():
        if section in SKIP_SECTIONS:
            continue
        pairs = flatten(value) if isinstance(value, dict) else [(section, value)]
        rows = [[k, v, metric_note(k)] for k, v in pairs]
        if rows:
            tables.append(Table(["metric", "value", "meaning"], rows, title=f"{section}",
                                align=["left", "right", "left"]))
    return tables


# ------------------------------------------------------------------ training curves


def caption_table(picks: list[dict], classes: list[int]) -> Table:
    """The captions behind `plot_caption_grid`, keyed like its cells (A1, A2, ...)."""
    row_of = {c: i for i, c in enumerate(classes)}
    rows = [[image_key(row_of[p["label"]], p["column"]), class_name(p["label"]), p["caption"]] for p in picks]
    return Table(["image", "class", "caption (never seen in training)"], rows, align=["left", "left", "left"],
                 title="Captions used for the grid above")
