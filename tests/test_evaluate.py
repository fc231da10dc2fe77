"""The evaluation network, the metric table, and `python -m app.evaluate` on a real tiny run and on bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from app.evaluate import main as evaluate_main
from evaluation.evaluator import EvaluatorSpec, load_or_train, stratified_holdout, train_evaluator
from evaluation.report import fmt, headline_rows, table_rows

REPO = Path(__file__).resolve().parents[1]
SMALL = EvaluatorSpec(epochs=6, width=8)


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
    env.pop("WANDB_DIR", None)
    return env


def _coloured(n_per_class: int = 12, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """3 classes of 72x72 uint8 images: a noisy red, green or blue field (a trivially learnable task)."""
    g = torch.Generator().manual_seed(seed)
    imgs, labels = [], []
    for c, lab in enumerate((7, 3, 11)):
        x = torch.randint(0, 60, (n_per_class, 3, 72, 72), generator=g)
        x[:, c] += 180
        imgs.append(x.to(torch.uint8))
        labels += [lab] * n_per_class
    return torch.cat(imgs), np.array(labels)


def test_stratified_holdout_per_class():
    y = np.array([1] * 20 + [2] * 10 + [3] * 2)
    m = stratified_holdout(y, 0.1, seed=0)
    assert (m[y == 1].sum(), m[y == 2].sum(), m[y == 3].sum()) == (2, 1, 0)  # classes with < 3 items keep all
    assert np.array_equal(m, stratified_holdout(y, 0.1, seed=0)) and not np.array_equal(m, stratified_holdout(y, 0.1, 1))


def test_evaluator_learns_a_separable_task_and_is_deterministic():
    torch.set_num_threads(1)
    x, y = _coloured()
    a = train_evaluator(x, y, SMALL, log=lambda *_: None)
    assert a.classes == [3, 7, 11] and a.info["n_holdout"] == 3 and a.info["chance"] == pytest.approx(1 / 3)
    assert a.info["holdout_acc"] == 1.0
    feats, pred = a.features_and_predictions(x)
    assert feats.shape == (len(x), 4 * SMALL.width) and np.isfinite(feats).all()
    assert np.mean(pred == y) > 0.9  # dataset labels, not logit indices
    b = train_evaluator(x, y, SMALL, log=lambda *_: None)
    assert all(torch.equal(p, q) for p, q in zip(a.net.state_dict().values(), b.net.state_dict().values()))
    with pytest.raises(ValueError, match=">= 2 classes"):
        train_evaluator(x[:12], y[:12], SMALL)


def test_evaluator_cache_is_keyed_by_data_and_spec(tmp_path):
    torch.set_num_threads(1)
    x, y = _coloured(6)
    path = tmp_path / "evaluator.pt"
    first, cached = load_or_train(path, x, y, SMALL, log=lambda *_: None)
    assert not cached and path.is_file()
    again, cached = load_or_train(path, x, y, SMALL, log=lambda *_: None)
    assert cached and np.allclose(again.features(x), first.features(x), atol=1e-6)
    logs = []
    _, cached = load_or_train(path, x, y, EvaluatorSpec(epochs=5, width=8), log=logs.append)  # another spec
    assert not cached and "other data or settings" in logs[0]
    assert logs[1].startswith("evaluator: training the evaluation network on ") and f"kept as {path}" in logs[1]
    path.write_bytes(b"garbage")
    _, cached = load_or_train(path, x, y, SMALL, log=logs.append)  # unreadable: retrained, never trusted
    assert not cached and any("cannot read" in line for line in logs)
    blocked = tmp_path / "a_file" / "evaluator.pt"  # its folder cannot be made: used unsaved, with a message
    (tmp_path / "a_file").write_text("")
    ev, cached = load_or_train(blocked, x, y, SMALL, log=logs.append)
    assert not cached and ev.info["holdout_acc"] is not None and "cannot save" in logs[-1]


def test_table_shows_unavailable_with_reason_not_a_number():
    report = {"encoder": {"all": {"knn_acc": 0.5, "n_classes": 25}, "train": {"unavailable": "too few"},
                          "test": {"knn_acc": 0.9, "n_classes": 5}},
              "baselines": {"color_histogram": {"all": {"knn_acc": 0.4}}, "random_cnn": {"all": {"knn_acc": 0.3}}},
              "evaluator": {"unavailable": "the evaluator needs >= 2 classes, got 1"},
              "generation": {"kid_evaluator": {"unavailable": "no evaluation network"},
                             "kid_encoder": {"value": 0.01, "std": 0.001, "floor": 0.002, "floor_std": 0.0005}}}
    rows = {r[0]: r for r in table_rows(report)}
    assert rows["encoder kNN top-1, all (25 classes)"][1:3] == ("0.500", "colour hist / random CNN: 0.400 / 0.300")
    assert rows["encoder kNN top-1, train (? classes)"][1] == "n/a (too few)"
    assert not [k for k in rows if k.startswith("encoder linear probe, train")]  # one n/a row per reason, not four
    assert rows["evaluator held-out accuracy (train classes)"][1].startswith("n/a (the evaluator needs")
    assert rows["KID, evaluator space (test classes)"][1] == "n/a (no evaluation network)"
    assert "real floor 0.0020" in rows["KID, encoder space (test classes)"][2]
    assert "upsampling-grid contrast (2 / 4 / 8 px)" not in rows  # reports written before it existed
    report["generation"]["grid_contrast"] = {"value": {"2": 1.3318, "4": 1.0162, "8": 0.9184},
                                             "real_reference": {"unavailable": "too small"}}
    row = {r[0]: r for r in table_rows(report)}["upsampling-grid contrast (2 / 4 / 8 px)"]
    assert row[1:3] == ("1.33 / 1.02 / 0.92", "real n/a (too small)")
    report["generation"]["recognised_by_judge"] = {"unavailable": "DataError: no cache"}
    rows = {r[0]: r for r in table_rows(report)}
    judged = rows["recognised by the judge among all / run / own classes, test-class captions"]
    assert judged[1:3] == ("n/a (DataError: no cache)", "")
    assert len([r for r in table_rows(report) if "judge" in r[0]]) == 1  # the reason once, not in every cell
    assert len([r for r in headline_rows(report) if "judge" in r[0]]) == 1
    report["generation"]["recognised_by_judge"] = {"test_captions": {
        "value": {"all": 0.035, "run": 0.095, "own": 0.58},
        "real_reference": {"all": 0.714, "run": 0.804, "own": 0.893},
        "chance": {"all": 1 / 102, "run": 0.04, "own": 0.2}, "n": 200, "n_real": 56}}
    judged = {r[0]: r for r in table_rows(report)}[
        "recognised by the judge among all / run / own classes, test-class captions"]
    assert judged[1:3] == ("0.035 / 0.095 / 0.580 (n=200)",
                           "real held-out 0.714 / 0.804 / 0.893 (n=56), chance 0.010 / 0.040 / 0.200")
    assert fmt(None) == "n/a" and fmt(1e-5) == "1.00e-05"
    assert fmt(1234567) == "1,234,567" and fmt([0.0442, 0.0081], 4) == "0.0442 ± 0.0081"
    assert fmt(float("nan")) == "nan" and fmt(True) == "True" and fmt([1, "a"]) == "1, a"


def test_headline_rows_pick_the_numbers_and_their_references():
    report = {"encoder": {"all": {"knn_acc": 0.852, "n_classes": 25}, "test": {"knn_acc": 0.882, "n_classes": 5}},
              "baselines": {"color_histogram": {"all": {"knn_acc": 0.58}, "test": {"knn_acc": 0.87}}},
              "generation": {
                  "kid_evaluator": {"value": 0.0821, "floor": -0.0022},
                  "class_consistency_evaluator_knn": 0.79,
                  "class_consistency_reference": {"real_evaluator_knn": 0.83, "chance": 0.2},
                  "recognised_by_judge": {
                      "test_captions": {"value": {"all": 0.035, "own": 0.58},
                                        "real_reference": {"all": 0.714, "own": 0.893},
                                        "chance": {"all": 1 / 102, "own": 0.2}},
                      "train_captions": {"unavailable": "no judge"}, "judge": {"n_classes": 102}},
                  "ms_ssim_same_caption": {"value": 0.23, "real_reference_same_class": 0.074},
                  "grid_contrast": {"value": {"2": 1.3318}, "real_reference": {"2": 1.004}}}}
    rows = {r[0]: r[1:] for r in headline_rows(report)}
    assert rows["source encoder kNN top-1, all 25 / 5 unseen classes"] == (
        "0.852 / 0.882", "colour histogram 0.580 / 0.870, chance 0.040 / 0.200")
    assert rows["KID, evaluation network's features, unseen classes"] == ("0.0821", "real vs real -0.0022")
    assert rows["judge: right class among the 5 unseen, unseen captions"] == ("0.580",
                                                                             "real photos 0.893, chance 0.200")
    assert rows["judge: right class among all 102, unseen captions"][0] == "0.035"
    assert rows["judge: right class among all 102, held-out seen-class captions"] == ("n/a (no judge)", "")
    assert rows["upsampling-grid contrast at 2 px (1 = no grid)"] == ("1.33", "real photos 1.00")
    assert not [k for k in rows if k.startswith("caption's colour")]  # absent from reports written before it
    assert len(headline_rows({})) == 8  # an empty report still gives every row, as n/a
    report["encoder"]["all"]["n_classes"], report["encoder"]["test"]["n_classes"] = 30, 4  # another split size
    rows = {r[0]: r[1:] for r in headline_rows(report)}
    assert rows["source encoder kNN top-1, all 30 / 4 unseen classes"][1].endswith("chance 0.033 / 0.250")
    assert "judge: right class among the 4 unseen, unseen captions" in rows


def test_a_registered_metric_reaches_both_tables_and_the_summary():
    """Adding a metric is one function plus its registration: its rows show in the tables, its key (with its goal)
    in the run summary, and it runs with the others (the registry's docstring shows the same)."""
    from evaluation.registry import METRICS, ROWS, Row, register_metric, run_metrics
    from evaluation.report import summary_goals, summary_values
    before = len(ROWS)
    keys = set(summary_values({}))
    try:
        @register_metric("sharpness", rows=[
            Row("sharpness of the generated images", "{generation.sharpness.value}",
                reference="real photos {generation.sharpness.real_reference}", good="higher; close to real",
                needs="generation.sharpness"),
            Row("sharpness (Laplacian variance)", "{generation.sharpness.value}",
                reference="real photos {generation.sharpness.real_reference}", headline=10,
                keys={"eval/sharpness": "generation.sharpness.value"}, goal="max")])
        def sharpness(ctx) -> dict:
            return {"sharpness": {"value": ctx, "real_reference": 0.7}}

        report, _ = run_metrics(0.5, ("generation",), names=["sharpness"])
        assert report == {"generation": {"sharpness": {"value": 0.5, "real_reference": 0.7}}}
        assert ("sharpness of the generated images", "0.500", "real photos 0.700", "higher; close to real") \
            in table_rows(report)
        assert headline_rows(report)[-1] == ("sharpness (Laplacian variance)", "0.500", "real photos 0.700")
        assert summary_values(report)["eval/sharpness"] == 0.5 and summary_values({})["eval/sharpness"] is None
        assert summary_goals()["eval/sharpness"] == "max"
        assert not [r for r in table_rows({}) if r[0].startswith("sharpness")]  # absent from older reports
        with pytest.raises(ValueError, match="registered twice"):
            register_metric("sharpness")(sharpness)
    finally:
        METRICS.pop("sharpness", None)
        del ROWS[before:]
    assert set(summary_values({})) == keys


def test_summary_keys_are_the_same_in_every_run_with_their_goals():
    from evaluation.report import summary_goals, summary_values
    empty, judged_off = summary_values({}), summary_values({"generation": {
        "recognised_by_judge": {"unavailable": "skipped (eval.judge=false)"}, "kid_evaluator": {"value": 0.08}}})
    assert set(empty) == set(judged_off) and all(v is None for v in empty.values())
    assert judged_off["eval/kid"] == 0.08 and judged_off["eval/judge_test_all"] is None
    goals = summary_goals()
    assert goals["eval/kid"] == goals["eval/ms_ssim"] == "min" and goals["eval/knn_all"] == "max"
    assert "eval/grid_contrast" in empty and "eval/grid_contrast" not in goals  # good is ~ 1, not a direction


@pytest.fixture(scope="module")
def tiny_run(mini_root, mini_cache, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval_runs")
    cmd = [sys.executable, "run_experiment.py", "--config", "experiments/tiny.yaml", f"--data.cache={mini_cache}",
           f"--data.root={mini_root}", f"--run.out_dir={out}", "--run.name=ev", "--train.threads=1",
           "--train.device=cpu", "--eval.judge=true"]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "ev"


def _evaluate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.evaluate", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=600)


def test_evaluate_command_rewrites_eval_and_prints_the_table(tiny_run):
    before = json.loads((tiny_run / "eval" / "metrics.json").read_text())
    (tiny_run / "eval" / "metrics.json").unlink()
    proc = _evaluate("--run", str(tiny_run), "--no-figures")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(tiny_run / "eval")
    for words in ("kNN top-1", "colour hist / random CNN", "KID, evaluator space", "real floor", "R-precision",
                  "MS-SSIM", "class consistency", "upsampling-grid contrast"):
        assert words in proc.stdout, words
    gc = json.loads((tiny_run / "eval" / "metrics.json").read_text())["generation"]["grid_contrast"]
    for part in ("value", "real_reference"):  # {period: ratio} for the samples and for the real test photos
        assert list(gc[part]) == ["2", "4", "8"] and all(v > 0 for v in gc[part].values()), gc
    assert gc["n"] == len(np.load(tiny_run / "eval" / "samples.npz")["images"])
    m = json.loads((tiny_run / "eval" / "metrics.json").read_text())
    assert m["encoder"] == before["encoder"] and m["baselines"] == before["baselines"]  # deterministic
    assert m["param_table"] == before["param_table"]  # the run's own evaluation rebuilt the networks the same way
    assert set(m["encoder"]) == set(m["baselines"]["random_cnn"]) == {"all", "train", "test"}
    ev = m["evaluator"]
    assert ev["n_classes"] == 20 and 0 <= ev["holdout_acc"] <= 1 and ev["chance"] == pytest.approx(0.05)
    g = m["generation"]
    for space in ("evaluator", "encoder"):
        kid, fid = g[f"kid_{space}"], g[f"fid_{space}"]
        assert {"value", "floor", "n_real", "n_fake"} <= set(kid) | set(fid) or "unavailable" in kid
    own = g["class_consistency_own_photo_representation"]
    assert 0 <= own["encoder_knn"] <= 1 and 0 <= own["evaluator_knn"] <= 1
    assert "own photo" in proc.stdout
    assert m["runtime"]["evaluator_cached"] is True  # the end-of-run evaluation trained and cached it
    jr, n_samples = g["recognised_by_judge"], len(np.load(tiny_run / "eval" / "samples.npz")["labels"])
    assert jr["test_captions"]["n"] == n_samples and jr["judge"]["n_classes"] == 102  # every class of the cache
    assert jr["test_captions_own_photo_representation"]["n"] == n_samples
    assert jr["test_captions"]["chance"]["own"] == pytest.approx(0.2)  # the 5 test classes
    assert jr["train_captions"]["chance"]["own"] == pytest.approx(0.05) and jr["train_captions"]["n"] > 0
    assert m["runtime"]["judge_cached"] is True  # trained beside the cache by the run's own evaluation
    assert "recognised by the judge" in proc.stdout
    ca = g["class_consistency_all_classes"]
    assert ca["chance"] == pytest.approx(1 / 25) and all(0 <= ca[k] <= 1 for k in ca)
    assert "kNN class among all the run's classes" in proc.stdout
    for name in ("embeddings.npz", "samples.npz", "evaluator.pt"):
        assert (tiny_run / "eval" / name).is_file()


def test_evaluate_bad_input_names_the_file(tiny_run, tmp_path, capsys):
    proc = _evaluate("--run", str(tmp_path / "nope"))  # the command line: exit 2, one line, no traceback
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {tmp_path / 'nope'}: run folder not found"

    def fails(*args: str) -> str:
        """app.evaluate's main in this process (the same code path, without a new interpreter): exit 2, stderr."""
        assert evaluate_main(list(args)) == 2
        return capsys.readouterr().err
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    assert "no best.pt or last.pt" in fails("--run", str(tmp_path / "empty"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert str(bad) in fails("--checkpoint", str(bad))
    err = fails("--checkpoint", str(tiny_run / "checkpoints" / "best.pt"), "--cache", str(tmp_path / "x.h5"),
                "--out", str(tmp_path / "out"))
    assert "x.h5" in err and not (tmp_path / "out").exists()
    ck = torch.load(tiny_run / "checkpoints" / "best.pt", weights_only=False)
    ck["config"]["model"]["enc_width"] = 20  # networks no longer match the weights
    torch.save(ck, tmp_path / "foreign.pt")
    assert "foreign.pt" in fails("--checkpoint", str(tmp_path / "foreign.pt"))


def test_evaluate_captions_per_class_sets_the_sample_count(tiny_run, tmp_path):
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())["eval"]
    proc = _evaluate("--run", str(tiny_run), "--no-figures", "--captions-per-class", "2", "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    g = json.loads((tmp_path / "o" / "metrics.json").read_text())["generation"]
    assert cfg["captions_per_test_class"] == 3 and g["n_generated"] == 5 * 2 * cfg["samples_per_caption"]
    proc = _evaluate("--run", str(tiny_run), "--captions-per-class", "-1", "--out", str(tmp_path / "neg"))
    assert proc.returncode == 2 and "--captions-per-class" in proc.stderr and not (tmp_path / "neg").exists()


def test_evaluate_truncation_reaches_every_sample(tiny_run, tmp_path):
    proc = _evaluate("--run", str(tiny_run), "--no-figures", "--truncation", "0", "--out", str(tmp_path / "t0"),
                     "--no-judge")
    assert proc.returncode == 0, proc.stderr[-3000:]
    g = json.loads((tmp_path / "t0" / "metrics.json").read_text())["generation"]
    assert g["truncation"] == 0.0
    assert g["recognised_by_judge"] == {"unavailable": "skipped (eval.judge=false)"}  # --no-judge over the run's
    k = yaml.safe_load((tiny_run / "config.yaml").read_text())["eval"]["samples_per_caption"]

    def changed(folder):
        """Share of pixel values that differ between samples of one caption (samples.npz: k in a row each)."""
        with np.load(folder / "samples.npz") as z:
            x = z["images"].astype(int)
        x = x.reshape(-1, k, *x.shape[1:])
        return float((x != x[:, :1]).mean())

    # no noise: the same image for every sample of a caption, but for a few values one grey level off (float
    # sums that the CPU's matrix kernels order differently for different rows of a batch). The tiny run's
    # generator barely uses its noise (MS-SSIM ~0.9997), but with noise its samples do differ, at many more values.
    default = json.loads((tiny_run / "eval" / "metrics.json").read_text())["generation"]
    assert default["truncation"] == 1.0
    assert changed(tmp_path / "t0") * 20 < changed(tiny_run / "eval")
    assert g["ms_ssim_same_caption"]["value"] == pytest.approx(1.0, abs=1e-9)  # identical samples
    assert default["ms_ssim_same_caption"]["value"] < 1 - 1e-5
    proc = _evaluate("--run", str(tiny_run), "--truncation", "2", "--out", str(tmp_path / "t2"))
    assert proc.returncode == 2 and "--truncation" in proc.stderr and not (tmp_path / "t2").exists()


def test_recognition_rates_among_candidate_sets():
    from evaluation.judge import recognition_rates
    classes = [1, 2, 3, 4]
    logits = np.array([[0.0, 5.0, 1.0, 0.0],   # label 3: argmax over all is 2; among {3, 4} it is 3
                       [0.0, 0.0, 0.0, 9.0],   # label 4: right everywhere
                       [9.0, 0.0, 0.0, 1.0]])  # label 4: wrong among all, right among {3, 4}
    labels = np.array([3, 4, 4])
    r = recognition_rates(logits, classes, labels, {"all": classes, "pair": [4, 3]})
    assert r == {"all": pytest.approx(1 / 3), "pair": 1.0}
    with pytest.raises(ValueError, match="lacks the label"):
        recognition_rates(logits, classes, labels, {"one": [4]})  # label 3 could never be right
    with pytest.raises(ValueError, match="does not know"):
        recognition_rates(logits, classes, labels, {"x": [3, 4, 9]})
    with pytest.raises(ValueError, match="no images"):
        recognition_rates(logits[:0], classes, labels[:0], {"all": classes})


def test_evalnet_depth_follows_the_input_size():
    from evaluation.evaluator import EvalNet

    def strides(net):
        return [m.stride[0] for m in net.body if isinstance(m, torch.nn.Conv2d)]
    assert strides(EvalNet(5, 8, 32)) == [1, 2, 2, 2]  # the evaluator: 32 -> 4 px
    assert strides(EvalNet(5, 8, 64)) == [1, 2, 2, 2, 2]
    judge_like = EvalNet(5, 8, 64, stem_stride=2)
    assert strides(judge_like) == [2, 2, 2, 2] and judge_like.body(torch.zeros(2, 3, 64, 64)).shape == (2, 32, 4, 4)
    for bad in ((48, 1), (16, 2), (64, 3)):
        with pytest.raises(ValueError, match="input_size"):
            EvalNet(5, 8, *bad)


def test_judge_net_shapes_and_the_mirror_averaged_prediction():
    from evaluation.evaluator import Evaluator, build_net
    from evaluation.judge import JUDGE_SPEC
    torch.manual_seed(0)
    net = build_net(EvaluatorSpec(arch="resnet", input_size=64, width=8), 7)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert net.body(x).shape == (2, 64, 4, 4) and net.features(x).shape == (2, 64) and net(x).shape == (2, 7)
    assert net.feature_dim == 64
    with pytest.raises(ValueError, match="64-px"):
        build_net(EvaluatorSpec(arch="resnet", input_size=32), 7)
    with pytest.raises(ValueError, match="arch must be"):
        build_net(EvaluatorSpec(arch="vgg"), 7)
    assert JUDGE_SPEC.arch == "resnet" and JUDGE_SPEC.flip_average  # the judge is this network
    images = torch.randint(0, 256, (3, 3, 72, 72), dtype=torch.uint8)
    spec = EvaluatorSpec(arch="resnet", input_size=64, width=8, flip_average=True)
    ev = Evaluator(net, list(range(7)), spec, {})
    mirrored = ev.logits(images.flip(-1))
    assert np.allclose(ev.logits(images), mirrored, atol=1e-5)  # an image and its mirror image: one prediction
    single = Evaluator(net, list(range(7)), EvaluatorSpec(arch="resnet", input_size=64, width=8), {})
    assert not np.allclose(single.logits(images), single.logits(images.flip(-1)), atol=1e-3)


def test_fingerprint_of_evaluators_kept_before_the_judge_fields_is_unchanged():
    """Evaluators cached in run folders before arch / augment / min_area / flip_average existed stay valid."""
    import hashlib
    from dataclasses import asdict, replace

    from evaluation.evaluator import fingerprint
    images, labels = torch.zeros(2, 3, 4, 4, dtype=torch.uint8), np.array([1, 2])
    spec = EvaluatorSpec()
    before = {k: v for k, v in asdict(spec).items() if k not in ("arch", "augment", "min_area", "flip_average")}
    h = hashlib.sha256(json.dumps(before, sort_keys=True).encode())
    h.update(labels.astype(np.int64).tobytes())
    h.update(images.numpy().tobytes())
    assert fingerprint(images, labels, spec) == h.hexdigest()
    for change in ({"arch": "resnet", "input_size": 64}, {"augment": "resized"}, {"flip_average": True}, {"epochs": 3}):
        assert fingerprint(images, labels, replace(spec, **change)) != h.hexdigest(), change


def test_judge_is_trained_once_per_cache_and_scores_each_sample_set(mini_cache, tmp_path):
    """On the real fixture (102 classes, 3 photos each): trained once, kept beside the cache, then read back;
    the report scores each named set among all / run / own classes beside the judge's held-out real photos."""
    import shutil

    from data_utils.augment import center_crop
    from evaluation.judge import judge_path, judge_report, load_judge
    torch.set_num_threads(1)
    cache = tmp_path / "flowers.h5"
    shutil.copy(mini_cache, cache)
    spec = EvaluatorSpec(input_size=64, stem_stride=2, width=8, epochs=2, holdout_fraction=0.2)
    logs = []
    judge, cached, (images, labels) = load_judge(cache, spec, log=logs.append)
    assert not cached and judge_path(cache) == tmp_path / "flowers.judge.pt" and judge_path(cache).is_file()
    assert logs[0] == ("training the judge once for this data cache (all 306 images, 2 epochs): under a minute on "
                       f"a 2-core CPU; kept as {tmp_path / 'flowers.judge.pt'}")  # announced before it starts
    assert logs[1].startswith("judge: trained on ")
    from evaluation.judge import training_minutes  # the full cache: 6,551 training images x 100 epochs x 2.4 ms
    assert round(training_minutes(8189)) == 26 and training_minutes(306, spec) < 1
    assert judge.classes == list(range(1, 103)) and images.shape == (306, 3, 72, 72)
    again, cached, _ = load_judge(cache, spec, log=lambda *_: None)
    assert cached and np.allclose(again.logits(images[:8]), judge.logits(images[:8]), atol=1e-6)
    pick = np.flatnonzero(np.isin(labels, [5, 7]))
    run = [5, 7, 9, 11, 13]
    rep = judge_report(judge, {"s": (center_crop(images[torch.as_tensor(pick)], 64), labels[pick])}, images, labels,
                       run)
    s = rep["s"]
    assert s["n"] == 6 and s["n_real"] == 2  # one held-out photo of each of the two classes
    assert s["chance"] == {"all": pytest.approx(1 / 102), "run": 0.2, "own": 0.5}
    for part in ("value", "real_reference"):
        assert set(s[part]) == {"all", "run", "own"} and all(0 <= v <= 1 for v in s[part].values())
        assert s[part]["all"] <= s[part]["run"] <= s[part]["own"]  # fewer candidates can only help
    assert rep["judge"]["n_classes"] == 102 and rep["judge"]["n_holdout"] == 102
