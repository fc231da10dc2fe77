"""The published results (results/<run-id>/, written by `python -m app.publish`): each folder is a finished run's
files, its images are the 200 unseen-class images of its own split, its summary agrees with its metrics, and every
results folder the README names exists."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from app.publish import FILES
from data_utils.split import split_classes

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = sorted(p for p in (REPO / "results").glob("*") if p.is_dir())  # none when results/ is absent


def test_the_readme_names_only_published_runs():
    named = set(re.findall(r"results/([A-Za-z0-9_.-]*[A-Za-z0-9_-])", (REPO / "README.md").read_text()))
    assert named, "the README names no results/<run-id>/ folder"
    missing = sorted(n for n in named if not (REPO / "results" / n).is_dir())
    assert not missing, f"README names unpublished runs: {missing}"


@pytest.mark.parametrize("folder", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_a_published_run_can_be_rescored(folder):
    for f in (*FILES, "machine.json"):
        assert (folder / f).is_file(), f"{folder.name}: {f} missing"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "finished"
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    _, unseen = split_classes(cfg["data"]["seed"], cfg["data"]["n_train_classes"], cfg["data"]["n_test_classes"])
    with np.load(folder / "eval" / "samples.npz") as z:
        images, labels, captions = z["images"], z["labels"], z["captions"]
    assert images.dtype == np.uint8 and images.shape == (200, 64, 64, 3)
    assert sorted(set(labels.tolist())) == unseen  # only unseen classes, all five of them
    assert len(captions) == 200 and all(len(str(c)) > 0 for c in captions)
    assert images.std() > 10  # real pictures, not a constant array
    metrics = json.loads((folder / "eval" / "metrics.json").read_text())
    gen = metrics["generation"]
    assert summary["eval/kid"] == pytest.approx(gen["kid_evaluator"]["value"])
    assert summary["eval/judge_test_own"] == pytest.approx(gen["recognised_by_judge"]["test_captions"]["value"]["own"])
    assert summary["epochs"] <= 200  # the pass budget
