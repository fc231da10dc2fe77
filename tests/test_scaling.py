"""The scaling study's helpers (analysis/scaling.py): FLOPs of a GAN step, the table and the figure."""
from __future__ import annotations

from pathlib import Path

import pytest

from analysis.scaling import markdown_table, parse_band, plot, val_curve
from training.flops import gan_step_flops
from core.config import build_config

REPO = Path(__file__).resolve().parents[1]


def _cfg(**overrides):
    return build_config(str(REPO / "experiments" / "tiny.yaml"), {"train.device": "cpu", **overrides})


def test_gan_step_flops_per_image_grow_with_the_networks_not_the_batch():
    small = gan_step_flops(_cfg(**{"train.gan_batch_size": 4}), vocab_size=50)
    same = gan_step_flops(_cfg(**{"train.gan_batch_size": 8}), vocab_size=50)
    big = gan_step_flops(_cfg(**{"train.gan_batch_size": 4, "model.g_ratio": 2.0, "model.g_width": 24}),
                         vocab_size=50)
    assert small > 0 and same == pytest.approx(small, rel=0.02)  # per image: the batch does not matter
    assert big > 1.3 * small  # a generator with 4x the parameters costs more per image


def test_table_and_figure(tmp_path):
    rows = [dict(run=f"r{i}", arch="resnet", g_params=g, d_params=1000, batch=b, g_steps=s, gan_images=s * b,
                 gflops_per_image=1.0, pflops=p, status="finished", train_minutes=3.0, kid=k, kid_std=0.01,
                 judge_unseen5=0.5, judge_unseen5_photo=None, judge_seen102=0.4, ms_ssim=0.1, class_consistency=0.7)
            for i, (g, b, s, p, k) in enumerate([(10**6, 8, 400, 0.1, 0.08), (10**6, 32, 100, 0.1, 0.09),
                                                  (4 * 10**6, 8, 400, 0.3, 0.05)])]
    table = markdown_table(rows).splitlines()
    assert len(table) == 2 + len(rows) and "| r2 | 4,000,000 |" in table[-1] and "—" in table[-1]
    rows[0]["val_curve"] = [(100, 0.01), (400, 0.005)]
    rows.append(dict(rows[2], run="r3", kid=None, val_curve=[(50, 0.02)]))  # still training: a curve only
    out = plot(rows, tmp_path / "fig" / "scaling.png")
    assert out.is_file() and out.stat().st_size > 10_000
    banded = plot(rows, tmp_path / "banded.png", {"kid": (0.04, 0.11)}, "the CPU default")
    assert banded.is_file() and banded.read_bytes() != out.read_bytes()
    assert plot(rows, tmp_path / "titled.png", title="steps at full length").read_bytes() != out.read_bytes()
    from PIL import Image
    steps_only = plot(rows, tmp_path / "steps.png", x_axes=("steps",))
    assert Image.open(steps_only).width < 0.7 * Image.open(out).width  # one column of panels instead of two


def test_band_argument():
    assert parse_band("kid=0.040:0.111") == ("kid", 0.04, 0.111)
    with pytest.raises(ValueError, match="one of kid"):
        parse_band("fid=1:2")
    with pytest.raises(ValueError, match="METRIC=LOW:HIGH"):
        parse_band("kid=0.04")


def test_cli_refuses_a_bad_band_in_one_line(tmp_path, capsys):
    from analysis.scaling import main
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("{}\n")
    assert main([str(run), "--band", "kid=low:high", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --band 'kid=low:high'")
    assert not (tmp_path / "x.png").exists()


def test_val_curve_reads_the_gan_validations_and_keeps_a_repeated_steps_last_value(tmp_path):
    import json
    recs = [{"stage": "encoder", "epoch": 1, "step": 10, "val/kid": 9.0},  # not the GAN stage
            {"stage": "gan", "epoch": 2, "step": 5, "gan/d_loss": 1.0},  # no validation
            {"stage": "gan", "epoch": 3, "step": 40, "val/kid": 0.5},
            {"stage": "gan", "epoch": 4, "step": 80, "val/kid": 0.4},
            {"stage": "gan", "epoch": 4, "step": 80, "val/kid": 0.3}]  # the epoch repeated after a resume
    (tmp_path / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert val_curve(tmp_path / "stats.jsonl") == [(40, 0.5), (80, 0.3)]
    assert val_curve(tmp_path / "missing.jsonl") == []


def test_the_published_rows_redraw_the_figure(tmp_path, capsys):
    """docs/figures/scaling.json holds the study's rows (the residual family's among them, whose code is
    removed): the figure and the table come back from it alone, and a run folder's row joins them."""
    from analysis.scaling import load_rows, main
    published = REPO / "docs" / "figures" / "scaling.json"
    rows = load_rows(published)
    assert {r["arch"] for r in rows} == {"dcgan", "resnet"} and all(r["kid"] is not None for r in rows)
    assert main([str(published), "--table", "--out", str(tmp_path / "s.png")]) == 0
    table = capsys.readouterr().out
    assert all(f"| {r['run']} |" in table for r in rows) and (tmp_path / "s.png").stat().st_size > 10_000


@pytest.mark.parametrize("text,message", [("{not json", "not a readable JSON rows file"), ("[]", "non-empty list"),
                                          ('[{"run": "a"}]', "row 0 lacks arch")])
def test_a_bad_rows_file_is_one_line(tmp_path, capsys, text, message):
    from analysis.scaling import main
    bad = tmp_path / "rows.json"
    bad.write_text(text)
    assert main([str(bad), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and message in err[0]
    assert not (tmp_path / "x.png").exists()
