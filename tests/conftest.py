"""Shared fixtures: the committed real-data fixture and an HDF5 cache built from it once per session.

`tests/fixtures/oxford102_mini` is the official Oxford-102 layout cut down to 3 real images per class
(all 102 classes, 306 images) with their real caption files and the full real `imagelabels.mat` /
`setid.mat`. Treat both fixtures as read-only; copy them into `tmp_path` before changing anything.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MINI_ROOT = REPO / "tests" / "fixtures" / "oxford102_mini"


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
