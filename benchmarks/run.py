"""Training-throughput benchmark on the machine it runs on (one process, real data).

    python benchmarks/run.py [--json FILE] [--quick] [--device auto|cpu|cuda] [--cache PATH] [--jpg-dir DIR]
                             [--config experiments/default.yaml] [--threads N] [--section.key=value ...]

Measures, at the config's batch size (64) and resolution (64x64):
  - images/s of the full training step of each stage (`Trainer.encoder.step`, `Trainer.gan.step`: all
    networks, all losses, optimizer steps, the in-step crop/flip and caption sampling); the GAN step also at
    train.gan_batch_size when the config sets another (experiments/default.yaml: 32), for the projection;
  - images/s of forward+backward (and forward alone) of each network;
  - the data pipeline per batch (uint8 crop/flip + caption sampling from memory);
  - peak memory (CPU max RSS; CUDA max allocated when on a GPU);
  - FLOPs per image of each training step and network, of the config's whole training, the FLOP rate reached,
    and on a GPU a rough projection of the training time on one T4 (by the ratio of tensor-core peaks);
  - the cost of validation, sample grids, checkpoints and the final evaluation, and from all of these the
    projected wall time of the config (experiments/default.yaml: 100 encoder + 100 GAN epochs);
  - the reference pipeline (benchmarks/reference.py: the base repo's GAN-CLS step with per-item JPEG
    decoding) on the same machine, and the ratio ours / reference of full GAN-step images/s.
Writes everything to --json FILE and prints a table. --quick: a few steps per measurement (for tests).
"""
# Layout: benchmarks/timing.py (clocks, memory, machine facts), benchmarks/measure.py (the measurements on the
# project's Trainer), benchmarks/report.py (the printed table); this file: CLI, reference, projection, results.
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks import measure, reference  # noqa: E402
from benchmarks.report import print_report  # noqa: E402
from benchmarks.timing import Phases, cpu_model, loadavg, machine_info, peak_rss_mb  # noqa: E402

__all__ = ["cpu_model", "main", "run_benchmark"]  # cpu_model: used by benchmarks/encoder_variants.py

# steps/iterations per measurement; `warmup` untimed iterations come first
SETTINGS = {
    "full": {"warmup": 3, "encoder_steps": 30, "gan_steps": 32, "net_iters": 10, "data_iters": 100,
             "ref_warmup": 2, "ref_steps": 12, "ref_jpegs": 512},
    "quick": {"warmup": 1, "encoder_steps": 2, "gan_steps": 4, "net_iters": 1, "data_iters": 5,
              "ref_warmup": 1, "ref_steps": 1, "ref_jpegs": 128},
}
FULL_DATA_JPG = Path("data") / "oxford102" / "jpg"  # where `prepare --download` puts the official files
FIXTURE_JPG = Path("tests") / "fixtures" / "oxford102_mini" / "jpg"
PROJECTION_INCLUDES = (
    "training steps of both stages at the measured rates; validation (encoder stage: with the "
    "kNN monitor; GAN stage: with KID and the sample grid); last.pt every epoch, best.pt at every "
    "GAN validation (upper bound), final saves and the reload of best.pt; metrics.evaluate once; "
    "loading the data and building the networks")
PROJECTION_EXCLUDES = (
    "Python/torch start-up and imports, building the HDF5 cache, W&B logging and uploads, "
    "per-step stats.jsonl writes, other processes' load on the machine")


# ---------------------------------------------------------------- paths and command line
def resolve(path: str | Path) -> Path:
    """A relative path names a file under the working directory, else under the repository."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return REPO / p if (REPO / p).exists() else p


def default_jpg_dir() -> Path:
    """$OXFORD102_DIR/jpg, else data/oxford102/jpg, else the committed fixture's jpg folder."""
    candidates = []
    if os.environ.get("OXFORD102_DIR"):
        candidates.append(Path(os.environ["OXFORD102_DIR"]) / "jpg")
    candidates += [REPO / FULL_DATA_JPG, REPO / FIXTURE_JPG]
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



def pick_device(name: str) -> torch.device | None:
    """--device as a torch.device; None (after the error message) when CUDA is asked for and absent."""
    from core.runtime import pick_device as runtime_device
    try:
        return runtime_device(name)
    except RuntimeError:
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return None


def load_config(config: str, cache: str | None, overrides: dict):
    """The experiment's config with the overrides (W&B off, --cache); None (after the error message) when it
    is invalid or its data cache is missing."""
    from core.config import ConfigError, build_config
    overrides["wandb.mode"] = "disabled"
    if cache:
        overrides["data.cache"] = cache
    try:
        cfg = build_config(resolve(config), overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return None
    cfg.data.cache = str(resolve(cfg.data.cache))
    if not Path(cfg.data.cache).is_file():
        print(f"error: data cache not found: {cfg.data.cache} (build it with `python -m data_utils.prepare "
              "--out data/flowers.h5`, or pass --cache PATH)", file=sys.stderr)
        return None
    return cfg


def main(argv: list[str] | None = None) -> int:
    from core.config import ConfigError, parse_overrides
    p, args, rest = parse_args(argv)
    try:
        overrides = parse_overrides(rest)
    except ConfigError as e:
        p.error(str(e))
    device = pick_device(args.device)
    if device is None:
        return 2
    cfg = load_config(args.config, args.cache, overrides)
    if cfg is None:
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


# ---------------------------------------------------------------- benchmark
def run_benchmark(cfg, device: torch.device, s: dict, jpg_dir: Path, tmp: Path, final_eval: bool = True,
                  config_name: str = "", quick: bool = False) -> dict:
    """Every measurement in order (settings `s`, scratch folder `tmp`); returns the results dict."""
    t_start = time.perf_counter()
    torch.manual_seed(0)
    machine = machine_info(device)
    b = measure.build_bench(cfg, device, s, tmp, Phases(device))
    measure.time_encoder_step(b)
    gan_key = measure.time_gan_steps(b)
    data_ms = measure.time_data_pipeline(b)
    networks = measure.time_networks(b)
    once = measure.time_once_costs(b, final_eval)
    ref = time_reference(b, jpg_dir)
    projection = project(b, gan_key, once, config_name)
    flops = training_flops(b, measure.count_step_flops(b), gan_key, projection)
    return assemble_results(b, machine, networks, data_ms, ref, projection, flops, quick, t_start)


# Dense fp16/bf16 tensor-core peaks (TFLOP/s, vendor data sheets) of the GPUs a projection may start from.
GPU_PEAK_TFLOPS = {"T4": 65.0, "L4": 121.0, "A10": 125.0, "A100": 312.0, "H100": 989.0, "H200": 989.0}
T4_PEAK_TFLOPS = GPU_PEAK_TFLOPS["T4"]


def gpu_peak_tflops(name: str) -> float | None:
    """The table's peak for a CUDA device name ("NVIDIA H100 80GB HBM3" -> H100), None when unknown."""
    for key in sorted(GPU_PEAK_TFLOPS, key=len, reverse=True):
        if key in name.upper():
            return GPU_PEAK_TFLOPS[key]
    return None


def training_flops(b: measure.Bench, per_image: dict, gan_key: str, projection: dict) -> dict:
    """FLOPs of the config's training (each stage's FLOPs per image x the images its epochs show), the FLOP
    rate the steps reached here, and on a GPU a rough projection to one T4: the measured training time scaled by
    the ratio of the two GPUs' tensor-core peaks. It assumes the same share of peak on the T4, which small
    batches on a fast GPU (bound by kernel launches) understate, so it is a lower bound, not a measurement."""
    tc, tr = b.cfg.train, b.tr
    enc_images = tc.encoder_epochs * tr.encoder.steps_per_epoch * tr.encoder.bs
    gan_images = tc.gan_epochs * tr.gan.steps_per_epoch * b.GB
    out = {**per_image, "encoder_training": enc_images * per_image["encoder_step_per_image"],
           "gan_training": gan_images * per_image["gan_step_per_image"],
           "achieved_tflops": {"encoder_step": per_image["encoder_step_per_image"] * b.ips["encoder_step"] / 1e12,
                               "gan_step": per_image["gan_step_per_image"] * b.ips[gan_key] / 1e12}}
    out["total_training"] = out["encoder_training"] + out["gan_training"]
    out["t4_projected_training_minutes"] = None
    if b.device.type == "cuda":
        peak = gpu_peak_tflops(torch.cuda.get_device_name(b.device))
        if peak is not None:
            train_s = projection["encoder_training_s"] + projection["gan_training_s"]
            out["t4_projected_training_minutes"] = train_s * peak / T4_PEAK_TFLOPS / 60
    return out


def time_reference(b: measure.Bench, jpg_dir: Path) -> dict:
    """The reference pipeline (benchmarks/reference.py) in this process at the same batch size and resolution,
    on JPEGs held in memory; with the ratio ours / reference of compute-only images/s."""
    s = b.s
    jpegs = reference.read_bytes(reference.pick_jpegs(jpg_dir, s["ref_jpegs"]))
    b.phases.start()
    ref = reference.benchmark_reference(jpegs, b.B, s["ref_steps"], s["ref_warmup"], b.device)
    b.phases.end("reference")
    ref["jpg_dir"] = display_path(jpg_dir)
    ref["jpegs_in_memory"] = len(jpegs)
    ref["mean_jpeg_kb"] = float(np.mean([len(x) for x in jpegs]) / 1024)
    ref["params_published"] = reference.PUBLISHED_PARAMS
    ref["params_ratio_to_published"] = {k: ref["params"][k] / v for k, v in reference.PUBLISHED_PARAMS.items()}
    b.ips["reference_gan_cls_step"] = ref["images_per_second"]
    ref["speedup_vs_reference_compute_only"] = b.ips["gan_step"] / ref["compute_images_per_second"]
    return ref


def project(b: measure.Bench, gan_key: str, once: dict, config_name: str) -> dict:
    """Projected wall time of the config: both stages' steps at the measured rates (stage 2 at `gan_key`'s),
    plus validations, sample grids, checkpoints, the final evaluation and loading (`once`: measure.time_once_costs)."""
    tc, tr = b.cfg.train, b.tr
    spe, bs = tr.encoder.steps_per_epoch, tr.encoder.bs
    n_val_enc, n_val_gan = stage_epochs(tc.encoder_epochs, tc.eval_every), stage_epochs(tc.gan_epochs, tc.eval_every)
    parts = {
        "encoder_training_s": tc.encoder_epochs * spe * bs / b.ips["encoder_step"],
        "gan_training_s": tc.gan_epochs * tr.gan.steps_per_epoch * b.GB / b.ips[gan_key],
        "validation_s": n_val_enc * once["validate_encoder_stage"]
                        + n_val_gan * (once["validate_gan_stage"] + once["sample_grid"]),
        # last.pt every epoch, best.pt at every GAN validation (upper bound), 2 saves at the end, 1 load
        "checkpoints_s": (tc.encoder_epochs + tc.gan_epochs + n_val_gan + 2) * once["checkpoint_save"]
                         + once["checkpoint_load"],
        "final_evaluation_s": once["final_evaluation"] or 0.0,
        "data_loading_s": b.t_load + b.t_init,
    }
    return {
        "config": config_name, "encoder_epochs": tc.encoder_epochs, "gan_epochs": tc.gan_epochs,
        "eval_every": tc.eval_every, "n_train": b.n_train, "batch_size": bs, "steps_per_epoch": spe,
        "gan_batch_size": b.GB, "gan_steps_per_epoch": tr.gan.steps_per_epoch,
        "validations": {"encoder": n_val_enc, "gan": n_val_gan},
        "measured_once_s": {**once, "load_data": b.t_load, "trainer_init": b.t_init},
        **parts, "total_s": sum(parts.values()),
        "includes": PROJECTION_INCLUDES, "excludes": PROJECTION_EXCLUDES,
    }


def assemble_results(b: measure.Bench, machine: dict, networks: dict, data_ms: float, ref: dict,
                     projection: dict, flops: dict, quick: bool, t_start: float) -> dict:
    """The results dict (the --json file's content); the machine's load average at the end goes in last."""
    ph = b.phases
    results = {
        "benchmark": "flower-t2i-gan training throughput",
        "mode": "quick" if quick else "full",
        "machine": machine,
        "batch_size": b.B, "gan_batch_size": b.GB, "image_size": b.size,
        "settings": b.s,
        "images_per_second": b.ips,
        "step_ms_median": b.step_ms,
        "networks": networks,
        "data_ms_per_batch": data_ms,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_mb_after_phase": ph.rss_after,
        "cuda_max_allocated_mb": max(ph.cuda_peaks.values()) if ph.cuda_peaks else None,
        "cuda_max_allocated_mb_by_phase": ph.cuda_peaks or None,
        "speedup_vs_reference": b.ips["gan_step"] / ref["images_per_second"],
        "projected_default_minutes": projection["total_s"] / 60,
        "projection": projection,
        "flops": flops,
        "reference": ref,
        "data": {"cache": display_path(Path(b.cfg.data.cache)), **b.data.split_record()},
        "benchmark_seconds": time.perf_counter() - t_start,
        "phase_seconds": ph.seconds,
    }
    results["machine"]["loadavg_end"] = loadavg()
    return results


if __name__ == "__main__":
    sys.exit(main())
