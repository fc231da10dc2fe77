"""Training-throughput benchmark on the machine it runs on (one process, real data).

    python benchmarks/run.py [--json FILE] [--quick] [--device auto|cpu|cuda] [--cache PATH] [--jpg-dir DIR]
                             [--config experiments/default.yaml] [--threads N] [--section.key=value ...]

Measures, at the config's batch size (64) and resolution (64x64):
  - images/s of the full training step of each stage (`Trainer.encoder_step`, `Trainer.gan_step`: all
    networks, all losses, optimizer steps, the in-step crop/flip and caption sampling); the GAN step also at
    train.gan_batch_size when the config sets another (experiments/default.yaml: 32), for the projection;
  - images/s of forward+backward (and forward alone) of each network;
  - the data pipeline per batch (uint8 crop/flip + caption sampling from memory);
  - peak memory (CPU max RSS; CUDA max allocated when on a GPU);
  - the cost of validation, sample grids, checkpoints and the final evaluation, and from all of these the
    projected wall time of the config (experiments/default.yaml: 100 encoder + 100 GAN epochs);
  - the reference pipeline (benchmarks/reference.py: the base repo's GAN-CLS step with per-item JPEG
    decoding) on the same machine, and the ratio ours / reference of full GAN-step images/s.
Writes everything to --json FILE and prints a table. --quick: a few steps per measurement (for tests).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks import reference  # noqa: E402

# steps/iterations per measurement; `warmup` untimed iterations come first
SETTINGS = {
    "full": {"warmup": 3, "encoder_steps": 30, "gan_steps": 32, "net_iters": 10, "data_iters": 100,
             "ref_warmup": 2, "ref_steps": 12, "ref_jpegs": 512},
    "quick": {"warmup": 1, "encoder_steps": 2, "gan_steps": 4, "net_iters": 1, "data_iters": 5,
              "ref_warmup": 1, "ref_steps": 1, "ref_jpegs": 128},
}
FULL_DATA_JPG = Path("shared") / "data" / "oxford102" / "jpg"  # beside the project
FIXTURE_JPG = Path("tests") / "fixtures" / "oxford102_mini" / "jpg"


# ---------------------------------------------------------------- helpers
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loop(fn: Callable[[], object], iters: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds of each of `iters` calls of fn (synchronised), after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def timed_once(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    """Max resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable, "torch": torch.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(), "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
            "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
    return info


def resolve(path: str | Path) -> Path:
    """A relative path names a file under the working directory, else under the repository."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return REPO / p if (REPO / p).exists() else p


def default_jpg_dir() -> Path:
    """$OXFORD102_DIR/jpg, else ../shared/data/oxford102/jpg, else the committed fixture's jpg folder."""
    candidates = []
    if os.environ.get("OXFORD102_DIR"):
        candidates.append(Path(os.environ["OXFORD102_DIR"]) / "jpg")
    candidates += [REPO.parent / FULL_DATA_JPG, REPO / FIXTURE_JPG]
    for c in candidates:
        if c.is_dir() and any(c.glob("*.jpg")):
            return c
    raise FileNotFoundError("no JPEG folder found for the reference pipeline: pass --jpg-dir DIR")


def display_path(path: Path) -> str:
    """A path for the results file: relative to the repository (or beside it), never this machine's absolute path."""
    p = Path(path).resolve()
    for base, prefix in ((REPO, ""), (REPO.parent, "../")):
        if p.is_relative_to(base):
            return prefix + str(p.relative_to(base))
    return p.name


def stage_epochs(epochs: int, every: int) -> int:
    """Number of epochs of a stage that run validation (every `every` epochs and the stage's last)."""
    return sum(1 for e in range(1, epochs + 1) if e % every == 0 or e == epochs)


# ---------------------------------------------------------------- measurements
def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", help="write the results to this file")
    p.add_argument("--quick", action="store_true", help="a few steps per measurement (tests, smoke checks)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--config", default="experiments/default.yaml", help="experiment whose steps are timed/projected")
    p.add_argument("--cache", help="HDF5 data cache (default: the config's data.cache, data/flowers.h5)")
    p.add_argument("--jpg-dir", help="JPEG folder for the reference pipeline (default: the full Oxford-102 "
                                     "jpg folder beside the project, else the committed fixture)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: train.threads, else cores)")
    p.add_argument("--no-final-eval", action="store_true",
                   help="do not time metrics.evaluate (the projection then leaves it out)")
    args, rest = p.parse_known_args(argv)
    return p, args, rest


def main(argv: list[str] | None = None) -> int:
    from training.config import ConfigError, build_config, parse_overrides
    p, args, rest = parse_args(argv)
    try:
        overrides = parse_overrides(rest)
    except ConfigError as e:
        p.error(str(e))
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    overrides["wandb.mode"] = "disabled"
    if args.cache:
        overrides["data.cache"] = args.cache
    try:
        cfg = build_config(resolve(args.config), overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg.data.cache = str(resolve(cfg.data.cache))
    if not Path(cfg.data.cache).is_file():
        print(f"error: data cache not found: {cfg.data.cache} (build it with `python -m data_utils.prepare "
              "--out data/flowers.h5`, or pass --cache PATH)", file=sys.stderr)
        return 2
    jpg_dir = Path(args.jpg_dir) if args.jpg_dir else default_jpg_dir()
    torch.set_num_threads(args.threads or cfg.train.threads or os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="flower-bench-") as tmp:
        results = run_benchmark(cfg, device, SETTINGS["quick" if args.quick else "full"], jpg_dir, Path(tmp),
                                final_eval=not args.no_final_eval, config_name=args.config, quick=args.quick)
    print_report(results)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {out}")
    return 0


def run_benchmark(cfg, device: torch.device, s: dict, jpg_dir: Path, tmp: Path, final_eval: bool = True,
                  config_name: str = "", quick: bool = False) -> dict:
    from data_utils.augment import random_crop_flip
    from data_utils.dataset import load_data
    from training.networks import count_params
    from training.trainer import Trainer

    t_start = time.perf_counter()
    torch.manual_seed(0)
    machine = machine_info(device)
    log = lambda *a, **k: None  # noqa: E731
    cuda_peaks: dict[str, float] = {}
    rss_after: dict[str, float] = {}
    phase_s: dict[str, float] = {}
    clock = [time.perf_counter()]

    def phase_start():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def phase_end(name: str):
        rss_after[name] = peak_rss_mb()
        phase_s[name] = time.perf_counter() - clock[0]
        clock[0] = time.perf_counter()
        if device.type == "cuda":
            cuda_peaks[name] = torch.cuda.max_memory_allocated(device) / 2 ** 20

    # ---- data and trainer (the same objects `training.run` builds)
    t0 = time.perf_counter()
    data = load_data(cfg.data)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    tr = Trainer(cfg, data, tmp / "run", device, tracker=None, log=log)
    t_init = time.perf_counter() - t0
    phase_end("data_and_trainer")
    B, size, n_train = cfg.train.batch_size, cfg.data.image_size, len(data.train)
    gen = torch.Generator().manual_seed(0)

    GB = tr.gan_bs  # stage 2's batch (train.gan_batch_size; = B unless set)

    def batch_idx(b: int = B) -> torch.Tensor:
        """b training-image indices (with replacement when the set is smaller than a batch)."""
        if n_train >= b:
            return torch.randperm(n_train, generator=gen)[:b]
        return torch.randint(n_train, (b,), generator=gen)

    nets = tr.nets
    text, enc, G, D = nets.text_encoder, nets.encoder, nets.generator, nets.discriminator
    ips: dict[str, float] = {}
    step_ms: dict[str, float] = {}

    # ---- stage 1: encoder step
    text.train().requires_grad_(True)
    enc.train().requires_grad_(True)
    tr.state.update(stage="encoder", stage_epoch=0, step_in_epoch=0, step=0)

    def enc_step():
        tr.encoder_step(batch_idx())
        tr.state["step"] += 1

    phase_start()
    t = time_loop(enc_step, s["encoder_steps"], s["warmup"], device)
    phase_end("encoder_step")
    ips["encoder_step"] = B * len(t) / sum(t)
    step_ms["encoder_step"] = 1000 * float(np.median(t))

    # ---- stage 2: GAN step (encoders frozen, as in Trainer.run_stage); R1 runs on 1 step in r1_every
    tr.set_stage_modes("gan")
    tr.state.update(stage="gan", stage_epoch=0, step_in_epoch=0, step=0)
    every = cfg.train.r1_every if cfg.train.r1_gamma > 0 else 1
    gan_steps = every * math.ceil(s["gan_steps"] / every)  # whole R1 periods

    def timed_gan_steps(b: int, name: str) -> None:
        def gan_step():
            tr.gan_step(batch_idx(b))
            tr.state["step"] += 1

        phase_start()
        t = time_loop(gan_step, gan_steps, s["warmup"], device)
        phase_end(name)
        ips[name] = b * len(t) / sum(t)
        step_ms[name] = 1000 * float(np.median(t))

    timed_gan_steps(B, "gan_step")  # at the reference's batch, for the ratio ours / reference
    gan_key = "gan_step"
    if GB != B:  # train.gan_batch_size: stage 2 trains at its own batch; the projection uses that rate
        gan_key = "gan_step_at_gan_batch"
        timed_gan_steps(GB, gan_key)

    # ---- data pipeline: uint8 crop/flip + caption sampling from memory (what each step does first)
    def data_batch():
        idx = batch_idx()
        x = random_crop_flip(tr.images[idx.to(device)], size)
        tokens, lengths = tr._batch(idx)
        return x, tokens, lengths

    t = time_loop(data_batch, s["data_iters"], s["warmup"], device)
    data_ms = 1000 * sum(t) / len(t)
    phase_end("data_pipeline")

    # ---- each network: forward and forward+backward at batch size B (train mode, all parameters trainable)
    phase_start()
    tokens, lengths = tr._batch(batch_idx())
    real = random_crop_flip(tr.images[batch_idx().to(device)], size)
    z = torch.randn(B, cfg.model.noise_dim, device=device)
    t_enc = torch.randn(B, cfg.model.text_dim, device=device)
    r = F.normalize(torch.randn(B, cfg.model.embed_dim, device=device), dim=1)
    calls = {"text_encoder": (text, lambda: text(tokens, lengths)),
             "encoder": (enc, lambda: enc(real)),
             "generator": (G, lambda: G(z, t_enc, r)),
             "discriminator": (D, lambda: D(real, t_enc))}
    networks = {}
    for name, (module, fwd) in calls.items():
        module.train().requires_grad_(True)

        def fwd_bwd(module=module, fwd=fwd):
            module.zero_grad(set_to_none=True)
            fwd().float().square().mean().backward()

        def fwd_only(fwd=fwd):
            with torch.no_grad():
                fwd()

        tb = time_loop(fwd_bwd, s["net_iters"], s["warmup"], device)
        tf = time_loop(fwd_only, s["net_iters"], s["warmup"], device)
        module.zero_grad(set_to_none=True)
        networks[name] = {"params": count_params(module), "forward_ms": 1000 * sum(tf) / len(tf),
                          "forward_backward_ms": 1000 * sum(tb) / len(tb),
                          "forward_images_per_second": B * len(tf) / sum(tf),
                          "forward_backward_images_per_second": B * len(tb) / sum(tb)}
        ips[name] = networks[name]["forward_backward_images_per_second"]
    phase_end("networks")

    # ---- validation, sample grid, checkpoints, final evaluation (once each)
    phase_start()
    text.train(), enc.train()
    tr.state.update(stage="encoder", stage_epoch=cfg.train.eval_every)
    t_val_enc = timed_once(tr.validate, device)  # includes the kNN monitor on all 25 classes
    text.eval(), enc.eval()
    tr.state.update(stage="gan", stage_epoch=cfg.train.eval_every)
    t_val_gan = timed_once(tr.validate, device)
    t_grid = timed_once(lambda: tr.sample_grid(tmp / "run" / "samples" / "bench.png"), device)
    t_save = timed_once(lambda: tr.save("last.pt"), device)
    from training.checkpoint import load_checkpoint
    t_ckpt_load = timed_once(lambda: load_checkpoint(tmp / "run" / "checkpoints" / "last.pt", map_location=device),
                             device)
    t_eval = None
    if final_eval:
        from metrics.evaluate import evaluate
        t_eval = timed_once(lambda: evaluate(nets, data, cfg, tmp / "run" / "eval", device, log=log), device)
    phase_end("evaluation")

    # ---- reference pipeline, same process, same batch size and resolution
    jpeg_paths = reference.pick_jpegs(jpg_dir, s["ref_jpegs"])
    jpegs = reference.read_bytes(jpeg_paths)
    phase_start()
    ref = reference.benchmark_reference(jpegs, B, s["ref_steps"], s["ref_warmup"], device)
    phase_end("reference")
    ref["jpg_dir"] = display_path(jpg_dir)
    ref["jpegs_in_memory"] = len(jpegs)
    ref["mean_jpeg_kb"] = float(np.mean([len(b) for b in jpegs]) / 1024)
    ref["params_published"] = reference.PUBLISHED_PARAMS
    ref["params_ratio_to_published"] = {k: ref["params"][k] / v for k, v in reference.PUBLISHED_PARAMS.items()}
    ref["issue_figure_images_per_second"] = 39.0  # base repo, measured on the 2-core dev CPU (from the issue)
    ips["reference_gan_cls_step"] = ref["images_per_second"]
    ref["speedup_vs_reference_compute_only"] = ips["gan_step"] / ref["compute_images_per_second"]

    # ---- projection of the config's wall time
    tc = cfg.train
    spe, bs = tr.steps_per_epoch, tr.bs
    n_val_enc, n_val_gan = stage_epochs(tc.encoder_epochs, tc.eval_every), stage_epochs(tc.gan_epochs, tc.eval_every)
    parts = {
        "encoder_training_s": tc.encoder_epochs * spe * bs / ips["encoder_step"],
        "gan_training_s": tc.gan_epochs * tr.gan_steps_per_epoch * GB / ips[gan_key],
        "validation_s": n_val_enc * t_val_enc + n_val_gan * (t_val_gan + t_grid),
        # last.pt every epoch, best.pt at every GAN validation (upper bound), 2 saves at the end, 1 load
        "checkpoints_s": (tc.encoder_epochs + tc.gan_epochs + n_val_gan + 2) * t_save + t_ckpt_load,
        "final_evaluation_s": t_eval or 0.0,
        "data_loading_s": t_load + t_init,
    }
    total_s = sum(parts.values())
    projection = {
        "config": config_name, "encoder_epochs": tc.encoder_epochs, "gan_epochs": tc.gan_epochs,
        "eval_every": tc.eval_every, "n_train": n_train, "batch_size": bs, "steps_per_epoch": spe,
        "gan_batch_size": GB, "gan_steps_per_epoch": tr.gan_steps_per_epoch,
        "validations": {"encoder": n_val_enc, "gan": n_val_gan},
        "measured_once_s": {"validate_encoder_stage": t_val_enc, "validate_gan_stage": t_val_gan,
                            "sample_grid": t_grid, "checkpoint_save": t_save, "checkpoint_load": t_ckpt_load,
                            "final_evaluation": t_eval, "load_data": t_load, "trainer_init": t_init},
        **parts, "total_s": total_s,
        "includes": "training steps of both stages at the measured rates; validation (encoder stage: with the "
                    "kNN monitor; GAN stage: with KID and the sample grid); last.pt every epoch, best.pt at every "
                    "GAN validation (upper bound), final saves and the reload of best.pt; metrics.evaluate once; "
                    "loading the data and building the networks",
        "excludes": "Python/torch start-up and imports, building the HDF5 cache, W&B logging and uploads, "
                    "per-step stats.jsonl writes, other processes' load on the machine",
    }

    results = {
        "benchmark": "flower-t2i-gan training throughput",
        "mode": "quick" if quick else "full",
        "machine": machine,
        "batch_size": B, "gan_batch_size": GB, "image_size": size,
        "settings": s,
        "images_per_second": ips,
        "step_ms_median": step_ms,
        "networks": networks,
        "data_ms_per_batch": data_ms,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_mb_after_phase": rss_after,
        "cuda_max_allocated_mb": max(cuda_peaks.values()) if cuda_peaks else None,
        "cuda_max_allocated_mb_by_phase": cuda_peaks or None,
        "speedup_vs_reference": ips["gan_step"] / ref["images_per_second"],
        "projected_default_minutes": total_s / 60,
        "projection": projection,
        "reference": ref,
        "data": {"cache": display_path(Path(cfg.data.cache)), **data.split_record()},
        "benchmark_seconds": time.perf_counter() - t_start,
        "phase_seconds": phase_s,
    }
    results["machine"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return results


# ---------------------------------------------------------------- report
def print_report(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    con = Console()
    if not con.is_terminal:  # piped / captured: wide enough for the table
        con = Console(width=120)
    m = res["machine"]
    con.print(f"[bold]{res['benchmark']}[/] ({res['mode']}) on {m['device_name']} — {m['cores']} cores, "
              f"{m['threads']} threads, torch {m['torch']}; load average at start {m['loadavg_start']}")
    ips, B = res["images_per_second"], res["batch_size"]
    t = Table(title=f"Throughput at batch {B}, {res['image_size']}x{res['image_size']}")
    for col in ("measurement", "images/s", "ms/batch", "params"):
        t.add_column(col, justify="left" if col == "measurement" else "right")
    t.add_row("encoder stage: full step (encoder_step)", f"{ips['encoder_step']:.1f}",
              f"{1000 * B / ips['encoder_step']:.0f}", "")
    t.add_row("GAN stage: full step (gan_step)", f"{ips['gan_step']:.1f}", f"{1000 * B / ips['gan_step']:.0f}", "")
    if "gan_step_at_gan_batch" in ips:
        GB = res["gan_batch_size"]
        t.add_row(f"GAN stage: full step at train.gan_batch_size {GB}", f"{ips['gan_step_at_gan_batch']:.1f}",
                  f"{1000 * GB / ips['gan_step_at_gan_batch']:.0f}", "")
    for name, n in res["networks"].items():
        t.add_row(f"  {name}: forward+backward (forward)",
                  f"{n['forward_backward_images_per_second']:.0f} ({n['forward_images_per_second']:.0f})",
                  f"{n['forward_backward_ms']:.1f} ({n['forward_ms']:.1f})", f"{n['params']:,}")
    t.add_row("data pipeline: crop/flip + captions", "", f"{res['data_ms_per_batch']:.2f}", "")
    ref = res["reference"]
    t.add_row("reference: GAN-CLS step incl. JPEG decode", f"{ref['images_per_second']:.1f}",
              f"{1000 * B / ref['images_per_second']:.0f}",
              f"G {ref['params']['generator']:,} / D {ref['params']['discriminator']:,}")
    t.add_row("  reference: compute only", f"{ref['compute_images_per_second']:.1f}", "", "")
    t.add_row("  reference: data (2 JPEG decodes/item)", "", f"{ref['data_ms_per_batch']:.1f}", "")
    con.print(t)
    pr = res["projection"]
    con.print(f"[bold]ours / reference (full GAN step, images/s): {res['speedup_vs_reference']:.2f}x[/]  "
              f"(compute only: {ref['speedup_vs_reference_compute_only']:.2f}x; issue's figure for the base repo "
              f"on the 2-core CPU: {ref['issue_figure_images_per_second']:.0f} images/s)")
    cuda = res["cuda_max_allocated_mb"]
    con.print(f"peak memory: RSS {res['peak_rss_mb']:.0f} MB" + (f", CUDA max allocated {cuda:.0f} MB" if cuda else ""))
    con.print(f"[bold]projected wall time of {pr['config']}: {res['projected_default_minutes']:.1f} min[/] = "
              f"encoder {pr['encoder_training_s'] / 60:.1f} + GAN {pr['gan_training_s'] / 60:.1f} + validation "
              f"{pr['validation_s'] / 60:.1f} + checkpoints {pr['checkpoints_s'] / 60:.1f} + final eval "
              f"{pr['final_evaluation_s'] / 60:.1f} + data {pr['data_loading_s'] / 60:.1f} min "
              f"({pr['encoder_epochs']} epochs x {pr['steps_per_epoch']} steps of {pr['batch_size']} + "
              f"{pr['gan_epochs']} x {pr['gan_steps_per_epoch']} of {pr['gan_batch_size']})")
    con.print(f"benchmark took {res['benchmark_seconds']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
