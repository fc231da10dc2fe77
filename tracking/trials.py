"""A local sweep's trials in one picture: `write_trials_plot(RUNS/sweeps/ID)` draws RUNS/sweeps/ID/trials.png from its
index.json, one panel per swept parameter with the sweep metric of each finished trial against the parameter's
value (the best trial starred; trials stopped early or failed are counted in the title, stopped ones drawn at the
bottom of each panel). `python -m tracking.best_run RUNS/sweeps/ID` and the sweep driver draw it."""
from __future__ import annotations

import json
import math
from pathlib import Path

from core.files import atomic_write

LOG_DISTRIBUTIONS = ("log_uniform", "log_uniform_values", "q_log_uniform", "q_log_uniform_values")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _axis_values(values: list, spec: dict) -> tuple[list, list[str] | None]:
    """A parameter's values -> (x positions, tick labels or None): numbers as they are; anything else (strings,
    booleans) at 0, 1, 2 ... in the order the sweep file lists them, named on the ticks."""
    if all(_number(v) for v in values):
        return values, None
    names = list(dict.fromkeys([str(v) for v in spec.get("values", [])] + [str(v) for v in values]))
    return [names.index(str(v)) for v in values], names


def plot_trials(index: dict):
    """A local sweep's index.json dict -> a matplotlib Figure (see the module docstring)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    trials, metric = index.get("trials", []), index.get("metric") or {}
    name, goal = metric.get("name", "metric"), metric.get("goal", "maximize")
    specs = (index.get("config") or {}).get("parameters") or {}
    swept = [p for p in specs if "value" not in specs[p]] or list(specs)
    done = [t for t in trials if t.get("status") == "finished" and _number(t.get("metric"))]
    stopped = [t for t in trials if t.get("status") == "stopped"]
    counts = {s: sum(t.get("status") == s for t in trials) for s in ("finished", "stopped", "failed")}
    best = (index.get("best") or {}).get("name")
    cols = min(3, max(1, len(swept)))
    rows = math.ceil(max(1, len(swept)) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False, layout="constrained")
    scores = [t["metric"] for t in done] or [0.0]
    low = min(scores) - 0.08 * ((max(scores) - min(scores)) or 0.01)  # where stopped trials are drawn
    for ax, param in zip(axes.flat, swept):
        shown = done + stopped
        xs, ticks = _axis_values([t["params"].get(param) for t in shown], specs.get(param) or {})
        for x, t in zip(xs, shown):
            if t in stopped:
                ax.plot(x, low, "x", color="grey", ms=7)
            elif t["name"] == best:
                ax.plot(x, t["metric"], "*", color="#d62728", ms=15, zorder=3)
            else:
                ax.plot(x, t["metric"], "o", color="#1f77b4", ms=7, alpha=0.8)
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=15 if max(map(len, ticks)) > 8 else 0, fontsize=8)
            ax.set_xlim(-0.5, len(ticks) - 0.5)
        elif (specs.get(param) or {}).get("distribution") in LOG_DISTRIBUTIONS and all(x > 0 for x in xs):
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1, 2, 5 x 10^k, labelled 1e-04 ...
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(param)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(swept):]:
        ax.set_axis_off()
    from matplotlib.lines import Line2D
    legend = [Line2D([], [], marker="o", ls="", color="#1f77b4", label="finished trial"),
              Line2D([], [], marker="*", ls="", color="#d62728", ms=12, label=f"best ({best})" if best else "best"),
              Line2D([], [], marker="x", ls="", color="grey", label="stopped early (no score; drawn below)")]
    fig.legend(handles=legend, loc="outside lower center", ncols=3, fontsize=9)
    fig.suptitle(f"sweep {index.get('sweep_id', '')}: {name} ({'higher' if goal == 'maximize' else 'lower'} is "
                 f"better) against each swept parameter; {counts['finished']} finished, {counts['stopped']} "
                 f"stopped, {counts['failed']} failed", fontsize=10)
    return fig


def write_trials_plot(folder: str | Path) -> Path:
    """RUNS/sweeps/ID/trials.png from its index.json; returns the path."""
    folder = Path(folder)
    fig = plot_trials(json.loads((folder / "index.json").read_text()))
    path = atomic_write(folder / "trials.png", lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
