"""The training-throughput benchmark (benchmarks/run.py) and its reference pipeline (benchmarks/reference.py).

One `--quick` run in a subprocess on the committed fixture (cache built by the `mini_cache` session fixture,
JPEGs from its jpg folder), one CPU thread; plus cheap in-process checks of the reference networks.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from benchmarks import reference

REPO = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
NETWORKS = ("text_encoder", "encoder", "generator", "discriminator")


def _positive_finite(value, where: str) -> None:
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where} = {value!r}"
    assert math.isfinite(value) and value > 0, f"{where} = {value!r}"


def test_reference_networks_match_published_sizes():
    pipe = reference.ReferencePipeline("cpu")
    for name, published in reference.PUBLISHED_PARAMS.items():
        assert abs(pipe.params()[name] / published - 1) < 0.10, (name, pipe.params()[name])
    embed, z = torch.randn(4, reference.EMBED_DIM), torch.randn(4, reference.NOISE_DIM)
    fake = pipe.G(embed, z)
    assert fake.shape == (4, 3, 64, 64) and fake.abs().max() <= 1
    prob, feat = pipe.D(fake, embed)
    assert prob.shape == (4,) and feat.shape == (4, 512, 4, 4) and ((prob > 0) & (prob < 1)).all()


def test_reference_decodes_real_jpegs(mini_root: Path):
    jpegs = reference.read_bytes(reference.pick_jpegs(mini_root / "jpg", 6))
    assert len(jpegs) == 6
    right, wrong, embed = reference.ReferenceData(jpegs).batch(5)
    assert right.shape == wrong.shape == (5, 3, 64, 64) and embed.shape == (5, reference.EMBED_DIM)
    assert right.dtype == torch.float32 and -1 <= right.min() < right.max() <= 1
    out = reference.ReferencePipeline("cpu").step(right, wrong, embed)
    assert all(math.isfinite(float(v)) for v in out.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_requested_without_cuda_is_an_error(capsys):
    from benchmarks.run import main
    assert main(["--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_quick_benchmark_writes_json(mini_root: Path, mini_cache: Path, tmp_path: Path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "benchmarks/run.py", "--quick", "--json", str(out), "--device", "cpu", "--threads", "1",
           "--cache", str(mini_cache), "--jpg-dir", str(mini_root / "jpg"),
           "--eval.judge=false"]  # the judge takes minutes to train on a cache; test_evaluate trains and checks it
    env = {**os.environ, **ONE_THREAD, "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "ours / reference" in r.stdout and "projected wall time" in r.stdout
    res = json.loads(out.read_text())

    for key in ("machine", "images_per_second", "data_ms_per_batch", "peak_rss_mb", "cuda_max_allocated_mb",
                "speedup_vs_reference", "projected_default_minutes", "reference", "projection", "networks"):
        assert key in res, key
    for key in ("cpu", "cores", "torch", "threads", "device_name"):
        assert res["machine"][key], key
    assert res["machine"]["threads"] == 1 and res["machine"]["device"] == "cpu"
    assert res["cuda_max_allocated_mb"] is None  # CPU run
    assert res["batch_size"] == 64 and res["image_size"] == 64

    ips = res["images_per_second"]
    for key in ("encoder_step", "gan_step", "reference_gan_cls_step", *NETWORKS):
        _positive_finite(ips.get(key), f"images_per_second.{key}")
    for name in NETWORKS:
        _positive_finite(res["networks"][name]["params"], f"networks.{name}.params")
    for key in ("data_ms_per_batch", "peak_rss_mb", "speedup_vs_reference", "projected_default_minutes"):
        _positive_finite(res[key], key)

    ref = res["reference"]
    for key in ("images_per_second", "compute_images_per_second", "data_ms_per_batch"):
        _positive_finite(ref[key], f"reference.{key}")
    assert ref["batch_size"] == 64
    assert abs(ref["params"]["generator"] / 4.6e6 - 1) < 0.10, ref["params"]
    assert abs(ref["params"]["discriminator"] / 2.8e6 - 1) < 0.10, ref["params"]
    assert math.isclose(res["speedup_vs_reference"], ips["gan_step"] / ref["images_per_second"], rel_tol=1e-9)

    pr = res["projection"]
    default = yaml.safe_load((REPO / "experiments" / "default.yaml").read_text())["train"]
    assert (pr["encoder_epochs"], pr["gan_epochs"]) == (default["encoder_epochs"], default["gan_epochs"])
    parts = ("encoder_training_s", "gan_training_s", "validation_s", "checkpoints_s", "final_evaluation_s",
             "data_loading_s")
    for key in parts:
        _positive_finite(pr[key], f"projection.{key}")
    assert math.isclose(sum(pr[k] for k in parts) / 60, res["projected_default_minutes"], rel_tol=1e-9)
    # stage 2 at its own batch (default.yaml's train.gan_batch_size): timed separately, used by the projection
    gb = pr["gan_batch_size"]
    assert gb == min(default["gan_batch_size"], pr["n_train"]) and res["gan_batch_size"] == gb != 64
    _positive_finite(ips.get("gan_step_at_gan_batch"), "images_per_second.gan_step_at_gan_batch")
    assert pr["encoder_epochs"] + pr["gan_epochs"] == 200  # the default uses the whole budget
    assert math.isclose(pr["gan_training_s"], pr["gan_epochs"] * pr["gan_steps_per_epoch"] * gb
                        / ips["gan_step_at_gan_batch"], rel_tol=1e-9)
    assert "train.gan_batch_size" in r.stdout

    fl = res["flops"]  # counted on the real steps: the GAN step runs G, D (three times) and E, so it costs more
    for key in ("encoder_step_per_image", "gan_step_per_image", "total_training"):
        _positive_finite(fl[key], f"flops.{key}")
    fwd = fl["forward_per_image"]
    assert fl["gan_step_per_image"] > 2 * (fwd["generator"] + fwd["discriminator"] + fwd["encoder"])
    assert math.isclose(fl["total_training"], fl["encoder_training"] + fl["gan_training"], rel_tol=1e-12)
    assert math.isclose(fl["gan_training"], pr["gan_epochs"] * pr["gan_steps_per_epoch"] * gb
                        * fl["gan_step_per_image"], rel_tol=1e-9)
    assert fl["t4_projected_training_minutes"] is None  # a CPU run projects nothing to a GPU
    assert "FLOPs per image" in r.stdout
    assert str(REPO) not in out.read_text()  # no absolute paths of this machine in the results


def test_gpu_peak_table_reads_device_names():
    from benchmarks.run import gpu_peak_tflops
    assert gpu_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0 and gpu_peak_tflops("Tesla T4") == 65.0
    assert gpu_peak_tflops("NVIDIA H200") == 989.0 and gpu_peak_tflops("Quadro P1000") is None


def test_encoder_variants_scores_each_variant_and_reports_a_broken_one(mini_cache, tmp_path):
    cfg = yaml.safe_load((REPO / "experiments" / "tiny.yaml").read_text())
    cfg["data"]["cache"] = str(mini_cache)
    cfg["train"].update(threads=1, device="cpu")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "variants.yaml").write_text("seed1: {train.seed: 1}\nbroken: {train.nope: 1}\n")
    out = tmp_path / "variants"
    cmd = [sys.executable, "benchmarks/encoder_variants.py", str(tmp_path / "variants.yaml"),
           "--config", str(tmp_path / "tiny.yaml"), "--parallel", "2", "--out", str(out)]
    env = {**os.environ, **ONE_THREAD, "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["variant"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(rows) == {"seed1", "broken"}
    assert "train.nope" in rows["broken"]["error"]
    ok = rows["seed1"]
    for key in ("all_knn_acc", "train_knn_acc", "test_knn_acc", "all_linear_acc", "test_linear_acc"):
        assert 0.0 <= ok[key] <= 1.0, key
    assert ok["encoder_epochs"] == 1 and ok["device"] == "cpu" and ok["machine"]
    assert [row[0] for row in ok["curve_epoch_knn_all_knn_test"]] == [1]  # eval_every 1: one monitor point
    assert (out / "seed1" / "checkpoints" / "last.pt").is_file()  # usable as train.encoders_from
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "seed1" in again.stdout  # refuses to mix results into an old folder


def test_supervised_reference_trains_with_labels_and_scores_like_the_encoder(mini_cache, tmp_path):
    out = tmp_path / "ref.json"
    cmd = [sys.executable, "benchmarks/supervised_reference.py", "--config", "experiments/tiny.yaml",
           "--epochs", "2", "--out", str(out), f"data.cache={mini_cache}", "train.threads=1", "train.device=cpu"]
    env = {**os.environ, **ONE_THREAD}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch ") == 2
    res = json.loads(out.read_text())
    assert res["epochs"] == 2 and res["device"] == "cpu" and res["machine"]
    for key in ("all_knn_acc", "train_knn_acc", "test_knn_acc", "all_linear_acc", "test_linear_acc"):
        assert 0.0 <= res[key] <= 1.0, key
    bad = subprocess.run([*cmd[:-3], "train.nope=1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "train.nope" in bad.stderr


def test_judge_variants_trains_the_judge_under_other_settings(mini_cache, tmp_path):
    out = tmp_path / "judge.jsonl"
    cmd = [sys.executable, "benchmarks/judge_variants.py", "--cache", str(mini_cache), "--threads", "1",
           "--out", str(out), "epochs=1", "width=4", "flip_average=false"]
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, **ONE_THREAD}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(out.read_text().splitlines()[-1])
    assert row["changes"] == {"epochs": 1, "width": 4, "flip_average": False}
    assert row["spec"]["arch"] == "resnet" and row["spec"]["epochs"] == 1 and row["n_classes"] == 102
    assert 0 <= row["holdout_acc"] <= 1 and row["machine"]["threads"] == 1 and row["params"] > 0
    bad = subprocess.run([*cmd[:-3], "epochs=many"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: epochs needs an integer, got 'many'"
    assert len(out.read_text().splitlines()) == 1  # nothing appended for bad input
