"""Small tables for `analysis.ipynb`: they show as HTML in a notebook and as aligned plain text elsewhere (no pandas).
The parameter table, and the compact, encoder and whole-evaluation tables of a run's eval/metrics.json."""
from __future__ import annotations

import html

from data_utils.classes import class_name
from evaluation.report import fmt, headline_rows, table_rows

from .figures import image_key

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


def headline_table(metrics: dict) -> Table:
    """The compact table of `eval/metrics.json` (evaluation.report.headline_rows): metric | value | reference."""
    return Table(["metric", "value", "reference"], [list(r) for r in headline_rows(metrics)],
                 title="The run at a glance", align=["left", "right", "left"])


def evaluation_table(metrics: dict) -> Table:
    """Every metric of `eval/metrics.json` with its baseline or floor and what good looks like
    (evaluation.report.table_rows: the table the end of training prints)."""
    return Table(["metric", "value", "baseline / floor", "what good looks like"],
                 [list(r) for r in table_rows(metrics)], title="The whole evaluation",
                 align=["left", "right", "left", "left"])


# ------------------------------------------------------------------ training curves


def caption_table(picks: list[dict], classes: list[int]) -> Table:
    """The captions behind `plot_caption_grid`, keyed like its cells (A1, A2, ...)."""
    row_of = {c: i for i, c in enumerate(classes)}
    rows = [[image_key(row_of[p["label"]], p["column"]), class_name(p["label"]), p["caption"]] for p in picks]
    return Table(["image", "class", "caption (never seen in training)"], rows, align=["left", "left", "left"],
                 title="Captions used for the grid above")
