"""The scaling study: GAN quality against compute, generator steps and size, at a fixed number of passes.

    python -m analysis.scaling runs/sc-* --out docs/figures/scaling.png --table --json rows.json
    python -m analysis.scaling docs/figures/scaling.json runs/new-cell --out docs/figures/scaling.png

Each run is a GAN stage on the same encoders (`--train.encoders_from`), differing in the generator and
discriminator size (model.g_ratio, model.g_width, model.d_width) and the GAN batch. An input is a run folder or
a rows file that `--json` wrote: docs/figures/scaling.json holds the published study's rows, among them the
residual family's (`arch: resnet`, removed from the code; docs/experiments.md). For each run: its
networks' sizes, generator steps, images shown, the FLOPs of one GAN step per image (counted on `gan_step` with
random inputs of the run's shapes, over one lazy-R1 period), the compute of its GAN stage, and its evaluation
(eval/metrics.json: KID in the evaluator's space, the judge among the 5 unseen classes and among all 102 for
held-out seen-class captions, the same-caption MS-SSIM). The figure plots KID and the judge against compute and
against generator steps, one marker per run (colour: size, marker: batch).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from training.flops import gan_step_flops

FIGURE_METRICS = (("kid", "KID, evaluator space\n(lower is better)"),
                  ("judge_unseen5", "judge: right class among\nthe 5 unseen (higher is better)"),
                  ("judge_seen102", "judge: seen-class captions,\namong 102 (higher is better)"),
                  ("ms_ssim", "MS-SSIM, samples of one caption\n(lower: more diverse)"))


def _get(d: dict, dotted: str):
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def val_curve(stats_path: Path) -> list[tuple[int, float]]:
    """(GAN step, val/kid) at every validation of the GAN stage in a run's stats.jsonl; a step logged twice (a
    resumed run repeats the epoch it was stopped in) keeps its last value."""
    if not stats_path.is_file():
        return []
    points = {}
    for line in stats_path.read_text().splitlines():
        rec = json.loads(line) if line.strip() else {}
        if rec.get("stage") == "gan" and rec.get("val/kid") is not None:
            points[int(rec["step"])] = float(rec["val/kid"])
    return sorted(points.items())


def run_row(run_dir: Path) -> dict:
    """One run's sizes, steps, compute and metrics (None where the run has no evaluation yet)."""
    from core.config import from_dict
    from models.build import build_networks, count_params
    cfg = from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    split = json.loads((run_dir / "split.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    m = json.loads((run_dir / "eval" / "metrics.json").read_text()) if (run_dir / "eval" / "metrics.json").is_file() \
        else {}
    nets = build_networks(cfg.model, split["vocab_size"])
    tc = cfg.train
    bs = min(tc.gan_batch_size or tc.batch_size, split["n_train"])
    steps = tc.gan_epochs * max(1, split["n_train"] // bs)
    flops = gan_step_flops(cfg, split["vocab_size"])
    gen = "generation.recognised_by_judge"
    return {
        "run": run_dir.name, "arch": "dcgan", "g_params": count_params(nets.generator),
        "d_params": count_params(nets.discriminator), "batch": bs, "gan_epochs": tc.gan_epochs, "g_steps": steps,
        "gan_images": steps * bs, "gflops_per_image": flops / 1e9, "pflops": flops * steps * bs / 1e15,
        "status": summary.get("status"), "train_minutes": (summary.get("train_seconds") or 0) / 60 or None,
        "kid": _get(m, "generation.kid_evaluator.value"), "kid_std": _get(m, "generation.kid_evaluator.std"),
        "judge_unseen5": _get(m, f"{gen}.test_captions.value.own"),
        "judge_unseen5_photo": _get(m, f"{gen}.test_captions_own_photo_representation.value.own"),
        "judge_seen102": _get(m, f"{gen}.train_captions.value.all"),
        "ms_ssim": _get(m, "generation.ms_ssim_same_caption.value"),
        "class_consistency": _get(m, "generation.class_consistency_evaluator_knn"),
        "val_curve": val_curve(run_dir / "stats.jsonl"),
    }


ROW_KEYS = ("run", "arch", "g_params", "d_params", "batch", "g_steps", "gflops_per_image", "pflops", "kid", "kid_std",
            "judge_unseen5", "judge_unseen5_photo", "judge_seen102", "ms_ssim", "train_minutes")


def load_rows(path: Path) -> list[dict]:
    """The rows of a file that `--json` wrote; ValueError naming the file if it is not one."""
    try:
        rows = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON rows file ({e})") from None
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{path}: expected a non-empty list of rows")
    for i, r in enumerate(rows):
        missing = [k for k in ROW_KEYS if not isinstance(r, dict) or k not in r]
        if missing:
            raise ValueError(f"{path}: row {i} lacks {', '.join(missing)}")
    return rows


def markdown_table(rows: list[dict]) -> str:
    cols = [("run", "run", "{}"), ("G params", "g_params", "{:,}"), ("D params", "d_params", "{:,}"),
            ("batch", "batch", "{}"), ("G steps", "g_steps", "{:,}"), ("GFLOP / image", "gflops_per_image", "{:.2f}"),
            ("PFLOP", "pflops", "{:.3f}"), ("KID", "kid", "{:.4f}"), ("judge, 5 unseen", "judge_unseen5", "{:.3f}"),
            ("same, photo route", "judge_unseen5_photo", "{:.3f}"),
            ("judge, seen among 102", "judge_seen102", "{:.3f}"), ("MS-SSIM", "ms_ssim", "{:.3f}"),
            ("minutes", "train_minutes", "{:.0f}")]
    lines = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + " --- |" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join("—" if r[k] is None else f.format(r[k]) for _, k, f in cols) + " |")
    return "\n".join(lines)


def parse_band(text: str) -> tuple[str, float, float]:
    """"kid=0.040:0.111" -> ("kid", 0.04, 0.111): a reference range drawn across a metric's panels."""
    key, _, rng = text.partition("=")
    lo, _, hi = rng.partition(":")
    keys = [k for k, _ in FIGURE_METRICS]
    if key not in keys:
        raise ValueError(f"--band {text!r}: the metric must be one of {', '.join(keys)}")
    try:
        return key, float(lo), float(hi)
    except ValueError:
        raise ValueError(f"--band {text!r}: expected METRIC=LOW:HIGH with two numbers") from None


def _label(r: dict) -> str:
    return f"{r['run']}: {r['arch']} G {r['g_params'] / 1e6:.2f} M, batch {r['batch']}"


def _log_x(ax) -> None:
    """A log x axis labelled at 1, 2, 5 x 10^n (0.05 0.1 0.2 ..., 2000 5000 ...), without minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


STUDY_TITLE = "GAN stage at fixed passes, on one set of encoders: size and batch"


X_AXES = {"compute": ("pflops", "GAN-stage compute, PFLOP (log)"), "steps": ("g_steps", "generator steps (log)")}


def plot(rows: list[dict], out: Path, bands: dict[str, tuple[float, float]] | None = None,
         band_label: str = "reference", title: str = STUDY_TITLE,
         x_axes: tuple[str, ...] = ("compute", "steps")) -> Path:
    """KID, the judge (unseen and seen classes) and the same-caption MS-SSIM against GAN compute (PFLOP, log) and
    against generator steps (log); colour: generator size, marker: batch; a line joins the two batches of one
    size. The last row follows each run's val/kid (held-out seen-class images, source-encoder space) over its
    validations, against the steps and compute spent so far (runs still training included). bands:
    {metric: (low, high)}, a reference range (another protocol's spread over runs) shaded grey. x_axes: the
    columns, "compute" and / or "steps" (X_AXES); runs of equal compute need only "steps"."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    all_rows, rows = rows, [r for r in rows if r["kid"] is not None]
    sizes = sorted({(r["arch"], r["g_params"]) for r in all_rows}, key=lambda s: s[1])
    colours = [plt.get_cmap("tab10")(i % 10) for i in range(len(sizes))]
    markers = {8: "o", 32: "s"}
    bands = bands or {}
    n_rows = len(FIGURE_METRICS) + 1  # the last row: val/kid during training
    fig, axes = plt.subplots(n_rows, len(x_axes), figsize=(5.5 * len(x_axes), 3.2 * n_rows), layout="constrained",
                             squeeze=False)
    for col, (x_key, x_label) in enumerate(X_AXES[name] for name in x_axes):
        for row, (y_key, y_label) in enumerate(FIGURE_METRICS):
            ax = axes[row, col]
            for (arch, g), colour in zip(sizes, colours):
                pts = sorted((r for r in rows if (r["arch"], r["g_params"]) == (arch, g) and r[y_key] is not None),
                             key=lambda r: r[x_key])
                if not pts:
                    continue
                ax.plot([r[x_key] for r in pts], [r[y_key] for r in pts], "-", color=colour, alpha=0.5)
                for r in pts:
                    ax.errorbar(r[x_key], r[y_key], yerr=r["kid_std"] if y_key == "kid" else None,
                                marker=markers.get(r["batch"], "^"), color=colour, ms=8, capsize=3,
                                label=_label(r))
            if y_key in bands:
                ax.axhspan(*bands[y_key], color="0.5", alpha=0.2, lw=0, label=band_label)
            _log_x(ax)
            ax.set_xlabel(x_label)
            ax.set_ylabel(y_label)
            ax.grid(alpha=0.3)
        ax = axes[-1, col]  # every validation of each run: quality against steps within the run
        for (arch, g), colour in zip(sizes, colours):
            for r in (r for r in all_rows if (r["arch"], r["g_params"]) == (arch, g) and r.get("val_curve")):
                steps, values = zip(*r["val_curve"])
                xs = steps if x_key == "g_steps" else [st * r["batch"] * r["gflops_per_image"] / 1e6 for st in steps]
                done = r["kid"] is not None  # a run still training: dotted, and named in the legend here
                ax.plot(xs, values, "-" if done else ":", marker=markers.get(r["batch"], "^"), ms=4, color=colour,
                        label=None if done else _label(r) + " (training)")
        _log_x(ax)
        ax.set_yscale("log")
        ax.set_xlabel(x_label.replace("GAN-stage compute", "compute so far").replace("generator steps",
                                                                                     "generator steps so far"))
        ax.set_ylabel("val/kid during training, source-\nencoder space (log; lower is better)")
        ax.grid(alpha=0.3)
    handles, labels = (sum(pair, []) for pair in zip(axes[0, 0].get_legend_handles_labels(),
                                                     axes[-1, 0].get_legend_handles_labels()))
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders of the study, or rows files that --json wrote")
    p.add_argument("--out", default="docs/figures/scaling.png", help="the figure")
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--table", action="store_true", help="print the rows as a markdown table")
    p.add_argument("--band", action="append", default=[], metavar="METRIC=LOW:HIGH",
                   help=f"a reference range shaded on a metric's panels ({', '.join(k for k, _ in FIGURE_METRICS)})")
    p.add_argument("--band-label", default="reference", help="the legend's name for the shaded ranges")
    p.add_argument("--title", default=STUDY_TITLE, help="the figure's title")
    p.add_argument("--x", choices=("both", *X_AXES), default="both",
                   help="the x axes: compute and steps (both), or one of them (runs of equal compute: steps)")
    args = p.parse_args(argv)
    try:
        bands = {k: (lo, hi) for k, lo, hi in map(parse_band, args.band)}
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = [Path(r) for r in args.runs]
    missing = [str(d) for d in paths if not (d.is_file() or (d / "config.yaml").is_file())]
    if missing:
        print(f"error: neither a run folder (no config.yaml) nor a rows file: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = []
    for path in paths:
        try:
            rows += load_rows(path) if path.is_file() else [run_row(path)]
        except ValueError as e:  # core.config.ConfigError included
            print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
            return 2
    x_axes = tuple(X_AXES) if args.x == "both" else (args.x,)
    print(f"figure: {plot(rows, Path(args.out), bands, args.band_label, args.title, x_axes)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    if args.table:
        print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
