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
        self._count = 0

    def __call__(self, model_file: str, **options: object) -> Path:
        key = (model_file, tuple(sorted(options.items())))
        if key not in self._tars:
            from tvmc_micro.compiler import compile_model

            source = model_path(model_file)
            out = self._new_path(model_file)
            compile_model(source, out, **options)  # type: ignore[arg-type]
            self._tars[key] = out
        return self._tars[key]

    def _new_path(self, model_file: str) -> Path:
        self._count += 1
        return self.root / f"mlf{self._count}_{Path(model_file).stem}.tar"

    def prefetch(self, requests: list[tuple[str, dict[str, object]]], workers: int | None = None) -> None:
        """Compile the requests not cached yet `workers` at a time (default: the CPU count, at most 2, or
        TVMC_TEST_WORKERS), each in its own process, so a test over many models does not compile them
        one after the other. A request that fails, or whose model is absent, is left for `__call__`,
        which then raises (or skips) in the test that asks for it."""
        import concurrent.futures
        import multiprocessing

        n = workers or int(os.environ.get("TVMC_TEST_WORKERS", min(2, os.cpu_count() or 1)))
        todo: dict[tuple[str, tuple[tuple[str, object], ...]], tuple[Path, Path, dict[str, object]]] = {}
        for model_file, options in requests:
            key = (model_file, tuple(sorted(options.items())))
            source = MODELS_DIR / model_file
            if key in self._tars or key in todo or not source.is_file():
                continue
            todo[key] = (source, self._new_path(model_file), options)
        if n < 2 or len(todo) < 2:
            return
        from tvmc_micro.compiler import compile_model

        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: TVM does not survive fork
        with concurrent.futures.ProcessPoolExecutor(n, mp_context=ctx) as pool:
            futures = {
                pool.submit(compile_model, source, out, **options): key
                for key, (source, out, options) in todo.items()
            }
            for fut in concurrent.futures.as_completed(futures):
                if fut.exception() is None:
                    self._tars[futures[fut]] = todo[futures[fut]][1]


@pytest.fixture(scope="session")
def compiled_mlf(tmp_path_factory: pytest.TempPathFactory) -> MlfCache:
    """`compiled_mlf("kws_ref_model.tflite", target="c -mcpu=cortex-m4")` → path of the MLF tar."""
    return MlfCache(tmp_path_factory.mktemp("mlf_cache"))
