"""Figures and tables for `analysis.ipynb` (matplotlib only; tables render as HTML or plain text, no pandas).

Each function takes plain numbers/arrays (from `analysis.loading` or the project) and returns a matplotlib
Figure or a `Table`; the notebook shows them with `plt.show()` / `display(...)`.
"""
from __future__ import annotations

import html
import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np

from data_utils.classes import class_name
from metrics.report import fmt

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
CURVE_PANELS = (
    ("Stage 1: encoder losses (enc/*)", lambda k: k.startswith("enc/")),
    ("Stage 2: discriminator (gan/d_*, gan/r1)", lambda k: k.startswith(("gan/d_", "gan/r1"))),
    ("Stage 2: generator (gan/g_adv, kl, distill)", lambda k: k.startswith("gan/") and
     not k.startswith(("gan/d_", "gan/r1"))),
    ("Validation (held-out train-class images)", lambda k: k in ("val/kid", "val/image_text_loss")),
    ("Encoder monitor: kNN accuracy", lambda k: k.startswith("monitor/")),
    ("Seconds per epoch", lambda k: k == "time/epoch_seconds"),
)


def _series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["images_seen"], r[key]) for r in rows if isinstance(r.get(key), (int, float))
           and math.isfinite(r[key]) and "images_seen" in r]
    return (np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float))


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Moving average with a shrinking window at the edges (same length as y)."""
    if window <= 1 or len(y) < 3:
        return y
    k = np.ones(window)
    return np.convolve(y, k, "same") / np.convolve(np.ones_like(y), k, "same")


def plot_training_curves(rows: list[dict], title: str = "") -> plt.Figure:
    """Six panels of `stats.jsonl` rows against images seen (epochs on the top axis): encoder losses,
    discriminator and generator losses, validation, the encoder's kNN monitor and seconds per epoch.
    Thin lines are the logged values, thick lines a moving average; the dashed line ends stage 1."""
    fig, axes = plt.subplots(3, 2, figsize=(13, 11), layout="constrained")
    keys = sorted({k for r in rows for k in r})
    epoch_rows = [r for r in rows if "time/epoch_seconds" in r and r.get("epoch")]
    per_epoch = epoch_rows[-1]["images_seen"] / epoch_rows[-1]["epoch"] if epoch_rows else None
    enc_rows = [r["images_seen"] for r in rows if r.get("stage") == "encoder" and "images_seen" in r]
    gan_rows = [r for r in rows if r.get("stage") == "gan"]
    boundary = max(enc_rows) if enc_rows and gan_rows else None
    for ax, (panel, wanted) in zip(axes.flat, CURVE_PANELS):
        ax.set_title(panel, fontsize=11)
        ax.set_xlabel("images seen")
        chosen = [k for k in keys if wanted(k)]
        lines = []
        for i, k in enumerate(chosen):
            x, y = _series(rows, k)
            if not len(x):
                continue
            target = ax
            if k == "val/image_text_loss" and "val/kid" in chosen:  # another scale: right-hand axis
                target = ax.twinx()
                target.set_ylabel(k)
            color = f"C{i}"
            few = len(x) < 30
            if few:
                lines += target.plot(x, y, "o-", color=color, label=k, ms=4)
            else:
                target.plot(x, y, color=color, alpha=0.25, lw=0.8)
                lines += target.plot(x, smooth(y, max(1, len(y) // 40)), color=color, lw=1.8, label=k)
            if k == "val/kid" and (y > 0).all() and y.max() > 20 * y.min():  # spans decades: log scale
                target.set_yscale("log")
                target.set_ylabel("val/kid (log scale)")
        if boundary is not None:
            ax.axvline(boundary, color="grey", ls="--", lw=1)
        if per_epoch:
            top = ax.secondary_xaxis("top", functions=(lambda x: x / per_epoch, lambda e: e * per_epoch))
            top.set_xlabel("epoch", fontsize=9)
        if lines:
            ax.legend(handles=lines, fontsize=8, loc="best")
        else:
            ax.text(0.5, 0.5, "not logged in this run", ha="center", va="center", transform=ax.transAxes,
                    color="grey")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------------ images
def _frame(ax) -> None:
    """Hide ticks and frame but keep axis labels (an image cell)."""
    ax.set_xticks([]), ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def image_key(row: int, col: int) -> str:
    """Name of a grid cell: row letter + column number ("A1", "B3", ...)."""
    return f"{chr(ord('A') + row)}{col + 1}"


def plot_caption_grid(fake: np.ndarray, real: np.ndarray, picks: list[dict], classes: list[int]) -> plt.Figure:
    """Left: images generated from captions alone (one row per unseen class, one column per caption);
    right: at the same place, the real photo that caption was written for. fake/real: uint8 (M, H, W, 3),
    one per entry of `picks` (see `analysis.loading.pick_test_captions`)."""
    n_rows, n_cols = len(classes), max(p["column"] for p in picks) + 1
    fig = plt.figure(figsize=(2 * n_cols * 1.45 + 1.6, n_rows * 1.6 + 0.9), layout="constrained")
    subs = fig.subfigures(1, 2, wspace=0.04)
    row_of = {c: i for i, c in enumerate(classes)}
    for sub, imgs, title in ((subs[0], fake, "Generated from the caption alone"),
                             (subs[1], real, "Real photo the caption was written for")):
        axes = sub.subplots(n_rows, n_cols, squeeze=False)
        sub.suptitle(title, fontsize=12)
        for ax in axes.flat:
            _frame(ax)
        for p, img in zip(picks, imgs):
            r, c = row_of[p["label"]], p["column"]
            axes[r, c].imshow(img)
            axes[r, c].set_title(image_key(r, c), fontsize=8, pad=2)
        if sub is subs[0]:
            for r, cls in enumerate(classes):
                axes[r, 0].set_ylabel("\n".join(textwrap.wrap(class_name(cls), 14)), fontsize=9)
    return fig


def caption_table(picks: list[dict], classes: list[int]) -> Table:
    """The captions behind `plot_caption_grid`, keyed like its cells (A1, A2, ...)."""
    row_of = {c: i for i, c in enumerate(classes)}
    rows = [[image_key(row_of[p["label"]], p["column"]), class_name(p["label"]), p["caption"]] for p in picks]
    return Table(["image", "class", "caption (never seen in training)"], rows, align=["left", "left", "left"],
                 title="Captions used for the grid above")


def plot_images(images: np.ndarray, title: str = "", n_cols: int = 8) -> plt.Figure:
    """A row (or rows) of uint8 images (N, H, W, 3), numbered from 1."""
    n = len(images)
    n_cols = min(n_cols, n)
    n_rows = math.ceil(n / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.6 * n_cols, 1.7 * n_rows + 0.5), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        axes.flat[i].imshow(img)
        axes.flat[i].set_title(str(i + 1), fontsize=8)
    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=11)
    return fig


def show_png(path, title: str = "", width: float = 7.0) -> plt.Figure:
    """A PNG file (e.g. the trainer's samples/epoch_XXX.png grid) as a figure."""
    img = plt.imread(str(path))
    h, w = img.shape[:2]
    fig, ax = plt.subplots(figsize=(width, width * h / w + 0.4), layout="constrained")
    ax.imshow(img)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return fig


# ------------------------------------------------------------------ embeddings
TEST_MARKERS = ("^", "s", "D", "P", "*", "X", "v", "p")
TEST_COLORS = ("#000000", "#d62728", "#1f3ab4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")


def class_styles(labels: np.ndarray, is_test: np.ndarray) -> dict:
    """label -> dict(color, marker, size, test): train classes small circles in 20 colours,
    test classes large outlined markers, one shape and colour each."""
    train = sorted(set(labels[~is_test].tolist()))
    test = sorted(set(labels[is_test].tolist()))
    cmap = plt.get_cmap("tab20")
    styles = {c: {"color": cmap(i % 20), "marker": "o", "size": 10, "test": False} for i, c in enumerate(train)}
    styles.update({c: {"color": TEST_COLORS[i % len(TEST_COLORS)], "marker": TEST_MARKERS[i % len(TEST_MARKERS)],
                       "size": 46, "test": True} for i, c in enumerate(test)})
    return styles


def _scatter_classes(ax, xyz: np.ndarray, labels: np.ndarray, styles: dict) -> list:
    handles = []
    for c, st in sorted(styles.items(), key=lambda kv: kv[1]["test"]):  # test classes drawn last (on top)
        m = labels == c
        pts = [xyz[m, i] for i in range(xyz.shape[1])]
        extra = {"depthshade": False} if xyz.shape[1] == 3 else {}
        h = ax.scatter(*pts, c=[st["color"]], marker=st["marker"], s=st["size"],
                       alpha=0.95 if st["test"] else 0.55, edgecolors="black" if st["test"] else "none",
                       linewidths=0.6, label=class_name(c) if st["test"] else None, **extra)
        if st["test"]:
            handles.append(h)
    return handles


def _legend(fig, handles) -> None:
    from matplotlib.lines import Line2D
    train = Line2D([], [], marker="o", ls="", color="grey", alpha=0.6, label="train classes (one colour each)")
    fig.legend(handles=[train, *handles], title="unseen test classes: large markers", loc="outside right center",
               fontsize=9, title_fontsize=9)


def plot_embedding_3d(xyz: np.ndarray, labels: np.ndarray, is_test: np.ndarray, title: str = "",
                      views=((20, -60), (20, 30))) -> plt.Figure:
    """3-D scatter (e.g. t-SNE) coloured by class, test classes with their own large markers; one panel
    per (elevation, azimuth) view so the depth can be read."""
    styles = class_styles(labels, is_test)
    fig = plt.figure(figsize=(6.2 * len(views) + 2.8, 6.2), layout="constrained")
    handles = []
    for i, (elev, azim) in enumerate(views):
        ax = fig.add_subplot(1, len(views), i + 1, projection="3d")
        handles = _scatter_classes(ax, xyz, labels, styles)
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(f"view {i + 1}: elevation {elev}°, azimuth {azim}°", fontsize=10)
        ax.set_xlabel("t-SNE 1"), ax.set_ylabel("t-SNE 2"), ax.set_zlabel("t-SNE 3")
        ax.tick_params(labelsize=7)
    _legend(fig, handles)
    if title:
        fig.suptitle(title)
    return fig


def plot_embedding_2d(xy: np.ndarray, labels: np.ndarray, is_test: np.ndarray, title: str = "",
                      axis_name: str = "UMAP") -> plt.Figure:
    """2-D scatter (e.g. UMAP) with the same class styles as `plot_embedding_3d`."""
    styles = class_styles(labels, is_test)
    fig, ax = plt.subplots(figsize=(9.5, 6.2), layout="constrained")
    handles = _scatter_classes(ax, xy, labels, styles)
    ax.set_xlabel(f"{axis_name} 1"), ax.set_ylabel(f"{axis_name} 2")
    _legend(fig, handles)
    if title:
        ax.set_title(title)
    return fig
