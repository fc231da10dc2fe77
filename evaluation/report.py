"""The report tables and the run summary, all built from the rows registered with the metric families
(evaluation/registry.py, evaluation/families.py), and the sweep score.

metrics.json (written by evaluation.evaluate.evaluate) has the sections
  encoder/{all,train,test}: knn_acc, linear_acc, silhouette, nmi, n, n_classes (source encoder)
  baselines/{color_histogram,random_cnn}/{all,train,test}: the same four for training-free features
  evaluator: n_classes, n_train, n_holdout, holdout_acc, chance, feature_dim, spec (the evaluation CNN)
  generation: the entries of the generation families (each family's docstring in evaluation/families.py says what
    its entries hold); every number has its reference beside it (real photos, a real-vs-real floor, chance)
  params, param_table (trainable_params: what the GAN-only epochs train), split, notes, runtime (timings and
    whether the evaluator / judge were read from their cache; the only non-deterministic part)
Any metric that cannot be computed is {"unavailable": reason} instead of a number.
"""
from __future__ import annotations

import math
import re
import sys

from . import families  # noqa: F401 - registers the metric families and their rows
from .registry import ROWS, Row

FIELD = re.compile(r"\{([\w.]+?)(?::(\d+))?\}")  # {path} or {path:digits} in a row's text


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


def lookup(report: dict, path: str) -> tuple[object, str]:
    """The entry at a dotted `path` of metrics.json -> (entry, where): entry None when absent; when the entry or one
    above it is {"unavailable": reason}, that dict and the path where it sits."""
    node, parts = report, path.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, dict) and "unavailable" in node:
            return node, ".".join(parts[:i])
        if not isinstance(node, dict) or part not in node:
            return None, ""
        node = node[part]
    return node, (path if isinstance(node, dict) and "unavailable" in node else "")


def _cell(x, digits: int = 3) -> str:
    """fmt, with a dict of numbers ({"2": x, "4": y} or {"all": .., "own": ..}) as "x / y" in its order."""
    if isinstance(x, dict) and x and "unavailable" not in x:
        return " / ".join(fmt(v, digits) for v in x.values())
    return fmt(x, digits)


def _text(spec, report: dict, label: bool = False) -> str:
    """A row's label / value / reference: its `{path}` fields filled from the report; in a label, an absent or
    unavailable field shows as "?"."""
    if callable(spec):
        return spec(report)

    def fill(m: re.Match) -> str:
        value, where = lookup(report, m[1])
        return "?" if label and (value is None or where) else _cell(value, int(m[2] or 3))
    return FIELD.sub(fill, spec)


def _render(row: Row, report: dict, shown: set) -> tuple[str, str, str, str] | None:
    """(label, value, reference, good) of a row, or None when it is not shown: its `needs` entry is absent, or the
    entry that makes its value unavailable already had its row (one "n/a (reason)" per reason, not one per cell)."""
    if row.needs and lookup(report, row.needs)[0] is None:
        return None
    label = _text(row.label, report, label=True)
    paths = [] if callable(row.value) else [m[1] for m in FIELD.finditer(row.value)]
    found = [lookup(report, p) for p in paths]
    where = {w for _, w in found}
    if found and len(where) == 1 and "" not in where:  # every number of the row is unavailable for one reason
        (w,) = where
        if w in shown:
            return None
        shown.add(w)
        return label, fmt(found[0][0]), "", row.good
    return label, _text(row.value, report), _text(row.reference, report), row.good


def table_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """metrics.json dict -> rows (metric, value, baseline/floor, what good looks like) of the evaluation table:
    the registered rows outside the compact table, in registration order."""
    shown: set = set()
    rows = (_render(r, report, shown) for r in ROWS if not r.headline)
    return [r for r in rows if r is not None]


def headline_rows(report: dict) -> list[tuple[str, str, str]]:
    """metrics.json dict -> the compact table (metric, value, reference) shown in the README and the notebook: the
    registered headline rows in their order, each beside what real photos (or chance) score."""
    shown: set = set()
    rows = (_render(r, report, shown) for r in sorted((r for r in ROWS if r.headline), key=lambda r: r.headline))
    return [r[:3] for r in rows if r is not None]


def summary_values(report: dict) -> dict[str, float | None]:
    """The run summary's evaluation keys (every registered row's `keys`), the same names in every run: the number,
    or None where it is unavailable or absent."""
    out = {}
    for row in ROWS:
        for key, path in row.keys.items():
            value = lookup(report, path)[0]
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            out[key] = float(value) if number else None
    return out


def summary_goals() -> dict[str, str]:
    """{summary key: "min" | "max"} of the registered rows whose numbers have a better direction (W&B summaries)."""
    return {key: row.goal for row in ROWS if row.goal for key in row.keys}


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
