"""The metric registry (as stylegan2-ada's metric_main): each metric family is a function of one `EvalContext`
returning a flat dict of report entries, registered by name under a report section; `run_metrics` runs them in
registration order."""
from __future__ import annotations

import time
from typing import Callable

METRICS: dict[str, tuple[str, Callable]] = {}  # name -> (report section, family)


def register_metric(name: str, section: str = "generation"):
    """Decorator: register `fn(ctx) -> dict` as the metric family `name`, whose entries go to report[section]."""
    def wrap(fn: Callable) -> Callable:
        if name in METRICS:
            raise ValueError(f"metric family {name!r} registered twice")
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
