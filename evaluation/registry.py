"""The metric registry (as stylegan2-ada's metric_main): each metric family is a function of one `EvalContext`
returning a flat dict of report entries, registered by name under a report section with the table rows that show
them; `run_metrics` runs the families in registration order, and evaluation/report.py builds the evaluation table,
the compact (headline) table and the run summary's `eval/*` keys from the registered rows.

A `Row` is data: where its numbers are in metrics.json, what they are called, what they are compared with and what
good looks like. Adding a metric is one function plus its registration, e.g. a sharpness of the generated images:

    @register_metric("sharpness", rows=[
        Row("sharpness of the generated images", "{generation.sharpness.value}",
            reference="real photos {generation.sharpness.real_reference}", good="higher; close to real",
            needs="generation.sharpness"),
        Row("sharpness (Laplacian variance)", "{generation.sharpness.value}",
            reference="real photos {generation.sharpness.real_reference}", headline=10,
            keys={"eval/sharpness": "generation.sharpness.value"}, goal="max")])
    def sharpness(ctx: EvalContext) -> dict:
        return {"sharpness": entry(laplacian_variance, ctx.samples.images,
                                   real_reference=unavailable(laplacian_variance, ctx.real_test_images()))}

metrics.json then holds generation.sharpness, the evaluation table shows the first row and the compact table (README,
notebook) the second, and the run summary and W&B get eval/sharpness, whose W&B summary keeps its maximum.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

METRICS: dict[str, tuple[str, Callable]] = {}  # name -> (report section, family)
ROWS: list["Row"] = []  # every table row, in registration order


@dataclass(frozen=True)
class Row:
    """One row of a report table.

    label, value, reference: text with `{path}` fields, a dotted path into metrics.json (`{generation.kid_evaluator.
    value}`; `{path:4}` shows 4 decimals; a dict of numbers shows as "a / b / c"); or a function of the report
    returning the text. good: what good looks like (the evaluation table's last column).
    needs: a path that must be in the report for the row to show (metrics added later are absent from older reports).
    keys: {summary key: path of its number}: these go into the run summary and W&B under the same names in every
    run (None where the number is unavailable). goal: "max" or "min", which way is better for them ("" when good is
    closeness to a reference, e.g. 1 for the grid contrast).
    headline: the row's place in the compact table (README, notebook); 0 = the evaluation table only.
    """
    label: str | Callable[[dict], str]
    value: str | Callable[[dict], str]
    reference: str | Callable[[dict], str] = ""
    good: str = ""
    needs: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    goal: str = ""
    headline: int = 0

    def __post_init__(self):
        if self.goal not in ("", "min", "max"):
            raise ValueError(f"row {self.label!r}: goal must be 'min', 'max' or '', got {self.goal!r}")


def register_rows(rows) -> None:
    """Add table rows of report entries that no family returns (e.g. the evaluation network's own accuracy)."""
    keys = {k for r in ROWS for k in r.keys}
    for row in rows:
        twice = keys & set(row.keys)
        if twice:
            raise ValueError(f"summary key(s) {sorted(twice)} registered twice")
        keys |= set(row.keys)
        ROWS.append(row)


def register_metric(name: str, section: str = "generation", rows=()):
    """Decorator: register `fn(ctx) -> dict` as the metric family `name`, whose entries go to report[section] and
    are shown by `rows` (see Row)."""
    def wrap(fn: Callable) -> Callable:
        if name in METRICS:
            raise ValueError(f"metric family {name!r} registered twice")
        register_rows(rows)
        METRICS[name] = (section, fn)
        return fn
    return wrap


def run_metrics(ctx, sections: tuple[str, ...], names: list[str] | None = None, log=None) -> tuple[dict, dict]:
    """Run the registered families of `sections` (all, or only `names`) on ctx -> ({section: {key: entry}},
    {family: seconds}). `log`, when given, is called with one line naming each family as it starts."""
    report: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    for name, (section, fn) in METRICS.items():
        if section not in sections or (names is not None and name not in names):
            continue
        if log is not None:
            log(f"evaluation: {name} ...")
        t0 = time.time()
        report.setdefault(section, {}).update(fn(ctx))
        seconds[name] = time.time() - t0
    return report, seconds
