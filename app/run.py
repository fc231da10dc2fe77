"""One run, end to end: run directory -> data -> tracker -> Trainer.fit -> evaluation -> summary.

Run directory `runs/<run_id>/`: config.yaml (resolved), meta.json (git commit, device, versions),
split.json (class split + sizes), stats.jsonl (one JSON row per log step / epoch), curves.png (stats.jsonl
against images seen), samples/ (fixed caption grids), checkpoints/{best,last}.pt, eval/ (metrics.json,
embeddings.npz, samples.npz, figures/), summary.json (status, the eval/* summary keys, best checkpoint path).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import torch
import yaml

from core.config import Config, ConfigError, from_dict, resume_config, to_dict
from core.files import atomic_write_text, check_writable
from core.io import BEST_THEN_LAST, LAST, CheckpointError, load_checkpoint, resolve_checkpoint, run_dir_of
from core.runtime import git_commit, pick_device, set_threads
from data_utils.dataset import load_data
from data_utils.prepare import ensure_cache
from data_utils.records import DataError
from data_utils.text import Vocab
from evaluation.evaluate import evaluate
from evaluation.figures import write_curves, write_run_media
from evaluation.report import print_table, score, summary_goals, summary_values
from models.build import param_table
from models.inference import load_networks
from tracking.media import log_run_media
from tracking.sweep import SWEEP_METRIC
from tracking.tracker import Tracker, resolve_mode
from training.distributed import broadcast_object, setup, teardown
from training.trainer import NonFiniteLoss, Trainer
from training.validation import VALIDATION_GOALS


class RunExistsError(FileExistsError):
    """--run.name names a folder that already holds a run."""


class EvaluationStopped(KeyboardInterrupt):
    """SIGINT or SIGTERM during the end-of-run evaluation (a KeyboardInterrupt: no `except Exception` swallows it)."""


ENCODER_KEYS = ("model.embed_dim", "model.enc_width", "model.enc_depth", "model.text_width", "model.text_dim",
                "data.seed", "data.n_train_classes", "data.n_test_classes", "data.val_fraction", "data.image_size",
                "data.max_caption_len", "data.min_word_count", "data.limit_per_class")


def adopt_encoder_stage(cfg: Config, path: Path) -> dict:
    """train.encoders_from: check that `path`'s checkpoint finished stage 1 with this config's data and
    encoder settings (ENCODER_KEYS), and record its stage-1 epochs as this run's train.encoder_epochs (the
    200-epoch budget counts them). Returns the checkpoint; raises CheckpointError naming the file and key."""
    ckpt_path = resolve_checkpoint(path, BEST_THEN_LAST)  # stage 2 never changes the encoders
    ckpt = load_checkpoint(ckpt_path)
    src, st = from_dict(ckpt["config"]), ckpt["state"]
    if st["stage"] == "encoder" and st["stage_epoch"] < src.train.encoder_epochs:
        raise CheckpointError(f"{ckpt_path}: its encoder stage is not finished (epoch {st['stage_epoch']} of "
                              f"{src.train.encoder_epochs}); resume it or pick another train.encoders_from")
    def value(c: Config, dotted: str):
        section, key = dotted.split(".")
        return getattr(getattr(c, section), key)

    differ = [f"{k} = {value(src, k)!r} (here {value(cfg, k)!r})"
              for k in ENCODER_KEYS if value(src, k) != value(cfg, k)]
    if differ:
        raise CheckpointError(f"{ckpt_path}: its encoders were trained with {', '.join(differ)}")
    if src.train.encoder_epochs + cfg.train.gan_epochs > 200:
        raise CheckpointError(f"{ckpt_path}: its {src.train.encoder_epochs} encoder epochs + train.gan_epochs = "
                              f"{cfg.train.gan_epochs} exceed the 200-epoch budget")
    cfg.train.encoder_epochs = src.train.encoder_epochs
    cfg.train.encoders_from = str(ckpt_path)
    return ckpt


def _print_param_table(table: list[dict]) -> None:
    """The parameter table (total, trainable, size on disk, ratio to the encoder) as a rich table."""
    from rich.console import Console
    from rich.table import Table
    t = Table(title="networks")
    for col in ("network", "total params", "trainable", "size on disk", "/ encoder"):
        t.add_column(col, justify="left" if col == "network" else "right")
    for r in table:
        t.add_row(r["network"], f"{r['total_params']:,}", f"{r['trainable_params']:,}",
                  f"{r['size_on_disk_bytes'] / 2**20:.2f} MiB", f"{r['ratio_to_encoder']:.4f}")
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 100).print(t)


def _media(cfg: Config, data, eval_dir: Path, tracker, log) -> None:
    """Real-vs-generated grid (always) and t-SNE/UMAP figures (eval.figures) into eval/figures, then W&B."""
    t0 = time.time()
    written = write_run_media(eval_dir, data.test, cfg.data.image_size, projections=cfg.eval.figures, log=log)
    log_run_media(tracker, eval_dir, written)
    log(f"figures: {', '.join(p.name for p in written.values())} in {eval_dir / 'figures'} ({time.time() - t0:.1f}s)")


def _stop_evaluation_on_signal(signals: tuple, stop_requested: bool) -> None:
    """From here on SIGINT / SIGTERM stop the run at once, by raising EvaluationStopped: the training is finished
    and saved, and the evaluation writes its files only when it is done (a second signal then ends the process).
    A stop requested before this point raises it now."""
    def stop(signum, frame):
        for s in signals:
            signal.signal(s, signal.SIG_DFL)
        raise EvaluationStopped(signum)
    for s in signals:
        signal.signal(s, stop)
    if stop_requested:
        raise EvaluationStopped


def _curves(run_dir: Path, log) -> None:
    """curves.png from the run's stats.jsonl, also for a run that stopped; a picture never fails a run."""
    try:
        write_curves(run_dir)
    except Exception as e:  # noqa: BLE001 - e.g. a plotting backend problem: the run's files are written already
        log(f"warning: {run_dir / 'curves.png'} not drawn ({type(e).__name__}: {e})")


def run(cfg: Config, log=print, tables: bool = True, given: set[str] | None = None) -> dict:
    """Train (or resume) and evaluate one run; returns the summary that is also written to summary.json.

    log: one-line progress messages; tables: also print the rich parameter and evaluation tables on stdout.
    given: the dotted keys the user set (core.config.given_keys); a resume applies those that are safe to change
    and refuses the others. User errors raise before training (CheckpointError, ConfigError, DataError,
    TrackingError, RunExistsError, OutputError); a run that stops before its first checkpoint removes the run
    folder if this call created it."""
    rank, world = setup()
    if rank != 0:
        log, tables = (lambda *a, **k: None), False  # only rank 0 speaks
    ckpt = encoders = None
    created = False  # whether this call made the run folder (then a failure before any checkpoint removes it)
    if cfg.run.resume:
        resume_path = resolve_checkpoint(cfg.run.resume, LAST)
        ckpt = load_checkpoint(resume_path)
        run_dir = run_dir_of(resume_path)
        resume_path = Path(cfg.run.resume)
        cfg, changed = resume_config(ckpt["config"], cfg, given or set())
        cfg.run.resume = str(resume_path)
        for key, (old, new) in changed.items():
            log(f"resume: {key} = {new!r} (the checkpoint's: {old!r})")
    else:
        if cfg.train.encoders_from:
            encoders = adopt_encoder_stage(cfg, Path(cfg.train.encoders_from))
        name = cfg.run.name or time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid() % 10000:04d}"
        created = rank == 0 and not (Path(cfg.run.out_dir) / name).exists()  # before any process makes it
        run_dir = Path(cfg.run.out_dir) / broadcast_object(name, world)
        if rank == 0 and (run_dir / "checkpoints").exists():
            raise RunExistsError(f"{run_dir} already holds a run; pick another --run.name or use --run.resume")
    if rank == 0:
        resolve_mode(cfg.wandb.mode)  # TrackingError (e.g. online without credentials) before any folder exists
    try:
        pick_device(cfg.train.device)
    except RuntimeError as e:  # e.g. cuda asked for on a machine without one
        raise ConfigError(f"config key 'train.device': {e}") from None
    check_writable(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(cfg, run_dir, ckpt, encoders, rank, world, log, tables)
    except BaseException:
        if created and not (run_dir / "checkpoints").exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # it stopped before its first epoch: leave nothing behind
        raise


def _run(cfg: Config, run_dir: Path, ckpt: dict | None, encoders: dict | None, rank: int, world: int, log,
         tables: bool) -> dict:
    """run() once the run folder exists: data, tracker, Trainer.fit, evaluation, summary."""
    device = pick_device(cfg.train.device)
    threads = set_threads(cfg.train.threads, world)
    if rank == 0:
        ensure_cache(cfg.data, log)
    broadcast_object(None, world)  # the others wait for the cache
    data = load_data(cfg.data, vocab=Vocab(ckpt["vocab"]) if ckpt else None)
    here = data.split_record()
    differ = [f"{k} ({here.get(k)} here, {v} there)" for k, v in (ckpt or {}).get("split", {}).items()
              if here.get(k) != v]
    if differ:  # a resume reading its data from another cache (data.cache may change): it must hold the same data
        raise DataError(f"{cfg.data.cache}: these data differ from the resumed checkpoint's: {', '.join(differ)}")
    log(f"run {run_dir} on {device}: {data.split_record()} (data loaded in {data.load_seconds:.1f}s)")
    if rank == 0:
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
        atomic_write_text(run_dir / "split.json", json.dumps(data.split_record(), indent=1))
        atomic_write_text(run_dir / "meta.json", json.dumps({
            "git_commit": git_commit(), "device": str(device), "torch": torch.__version__,
            "python": sys.version.split()[0], "threads": threads, "world_size": world, "argv": sys.argv}, indent=1))
    wandb_cfg = cfg.wandb if rank == 0 else dataclasses.replace(cfg.wandb, mode="disabled")
    tracker = Tracker(to_dict(cfg), wandb_cfg, run_dir, resume_id=(ckpt or {}).get("tracker_run_id", ""), log=log)
    tracker.define_goals({**VALIDATION_GOALS, **summary_goals(), SWEEP_METRIC: "max"})
    trainer = Trainer(cfg, data, run_dir, device, tracker=tracker, resume=ckpt, log=log, rank=rank, world=world)
    if encoders is not None:
        trainer.start_from_encoders(encoders, cfg.train.encoders_from)
        log(f"stage 1 skipped: source and text encoders from {cfg.train.encoders_from} "
            f"({cfg.train.encoder_epochs} encoder epochs)")
    table = param_table(trainer.nets)
    ratio = table[2]["total_params"] / table[1]["total_params"]
    log("parameters: " + ", ".join(f"{r['network']}={r['total_params']:,}" for r in table)
        + f"; generator/encoder = {ratio:.4f}")
    tracker.log_table("params/table", table)
    if tables:
        _print_param_table(table)

    def _stop(signum, frame):
        log(f"received signal {signum}: finishing the current step and saving a checkpoint")
        trainer.stop_requested = True
    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    summary: dict = {"run_dir": str(run_dir)}
    exit_code = 0
    try:
        summary.update(trainer.fit())
        if summary["status"] == "finished" and rank == 0:
            _stop_evaluation_on_signal(tuple(old), trainer.stop_requested)
            # evaluate the selected (best) model, rebuilt as `python -m app.evaluate` rebuilds it
            nets = load_networks(load_checkpoint(run_dir / "checkpoints" / "best.pt", map_location=device), device)
            t0 = time.time()
            report = evaluate(nets, data, cfg, run_dir / "eval", device, log=log)
            summary["eval_seconds"] = time.time() - t0
            summary[SWEEP_METRIC] = score(report)
            if tables:
                print_table(report)
            summary.update(summary_values(report))  # the registered metrics' eval/* keys, the same in every run
            summary["best_checkpoint"] = str(run_dir / "checkpoints" / "best.pt")
            _media(cfg, data, run_dir / "eval", tracker, log)
            tracker.log_artifact(run_dir / "checkpoints" / "best.pt", f"model-{run_dir.name}", ["best", "latest"],
                                 metadata={k: v for k, v in summary.items() if isinstance(v, (int, float))})
    except EvaluationStopped as e:
        summary.update(status="interrupted", stopped_in="evaluation")
        which = f"signal {e.args[0]}" if e.args else "a signal"
        log(f"received {which} at the evaluation: stopped. Training is finished ({run_dir / 'checkpoints'}); "
            f"evaluate later with `python -m app.evaluate --run {run_dir}`, or "
            f"finish the run with `--run.resume={run_dir}`")
    except NonFiniteLoss as e:
        summary.update(status="failed", error=str(e))
        log(f"error: {e}")
        exit_code = 1
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        summary["tracker_run_id"] = tracker.run_id
        tracker.summary({k: v for k, v in summary.items() if v is None or isinstance(v, (int, float, str))})
        tracker.finish(exit_code)
        if rank == 0:
            atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1, default=float))
            _curves(run_dir, log)
        teardown()
    return summary
