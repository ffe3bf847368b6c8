"""Shared fixtures: where the reference models live, and the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The models are third-party files kept beside the repository (never committed into it).
MODELS_DIR = Path(os.environ.get("TVMC_MODELS_DIR", REPO_ROOT.parent / "shared" / "models"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not MODELS_DIR.is_dir():
        pytest.skip(f"reference models folder {MODELS_DIR} is absent (set TVMC_MODELS_DIR to point at it)")
    return MODELS_DIR


def model_path(name: str) -> Path:
    """Path of one reference model; skips the calling test with the reason when it is absent."""
    path = MODELS_DIR / name
    if not path.is_file():
        pytest.skip(f"reference model {path} is absent (set TVMC_MODELS_DIR to the shared models folder)")
    return path
