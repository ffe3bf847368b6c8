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


class MlfCache:
    """Compiles a reference model once per test session per set of options (compiling KWS takes seconds,
    and several test areas need the same MLF)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tars: dict[tuple[str, tuple[tuple[str, object], ...]], Path] = {}

    def __call__(self, model_file: str, **options: object) -> Path:
        key = (model_file, tuple(sorted(options.items())))
        if key not in self._tars:
            from tvmc_micro.compiler import compile_model

            source = model_path(model_file)
            out = self.root / f"mlf{len(self._tars)}_{Path(model_file).stem}.tar"
            compile_model(source, out, **options)  # type: ignore[arg-type]
            self._tars[key] = out
        return self._tars[key]


@pytest.fixture(scope="session")
def compiled_mlf(tmp_path_factory: pytest.TempPathFactory) -> MlfCache:
    """`compiled_mlf("kws_ref_model.tflite", target="c -mcpu=cortex-m4")` → path of the MLF tar."""
    return MlfCache(tmp_path_factory.mktemp("mlf_cache"))
