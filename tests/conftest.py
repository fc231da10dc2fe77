"""Shared fixtures: the committed real-data fixture and an HDF5 cache built from it once per session.

`tests/fixtures/oxford102_mini` is the official Oxford-102 layout cut down to 3 real images per class
(all 102 classes, 306 images) with their real caption files and the full real `imagelabels.mat` /
`setid.mat`. Treat both fixtures as read-only; copy them into `tmp_path` before changing anything.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MINI_ROOT = REPO / "tests" / "fixtures" / "oxford102_mini"


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs two workers) each worker's in-process torch gets its share of the
    cores, not all of them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def mini_root() -> Path:
    """Path of the committed official-layout fixture (306 images, 102 classes)."""
    if not (MINI_ROOT / "jpg").is_dir():
        pytest.fail(f"committed fixture missing: {MINI_ROOT.relative_to(REPO)}")
    return MINI_ROOT


@pytest.fixture(scope="session")
def mini_cache(mini_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HDF5 cache (schema of data_utils.cache) built from `mini_root` once per test session."""
    from data_utils.prepare import prepare

    out = tmp_path_factory.mktemp("mini_cache") / "flowers_mini.h5"
    prepare(mini_root, out, log=lambda *a, **k: None)
    return out
