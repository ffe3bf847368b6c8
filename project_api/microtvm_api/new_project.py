"""The part of `generate_project` every template shares: a new project directory holding the MLF.

A template server calls `new_project(...)` and adds its own files inside the `with` block; any failure,
its own included, removes the half-made project, so a failed create-project leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from microtvm_api.archive import safe_extract
from microtvm_api.errors import ArchiveError, ProjectExistsError

MLF_NAME = "model.tar"  # the MLF as given, kept in the project (its server reports this path)
MODEL_DIR = "model"  # the MLF extracted


@contextlib.contextmanager
def new_project(
    mlf_path: Path,
    project_dir: Path,
    copies: Iterable[tuple[Path, str]] = (),
    *,
    platform: str,
) -> Iterator[Path]:
    """Check the inputs, create `project_dir`, extract the MLF into `project_dir/model` (unsafe members
    refused), keep the tar as `project_dir/model.tar`, copy each (source, name) of `copies` into the
    project; yield the extracted model directory."""
    if not mlf_path.is_file():
        raise ArchiveError(
            f"model library format file {mlf_path} does not exist",
            "create it with: tvmc compile MODEL -o model.tar",
        )
    if project_dir.exists() and (not project_dir.is_dir() or any(project_dir.iterdir())):
        raise ProjectExistsError(
            f"{project_dir} already exists and is not empty",
            f"choose a new directory, or pass -f to tvmc micro create-project ... {platform}",
        )
    existed = project_dir.exists()
    project_dir.mkdir(parents=True, exist_ok=True)
    try:
        model_dir = project_dir / MODEL_DIR
        safe_extract(mlf_path, model_dir)
        if not (model_dir / "metadata.json").is_file():
            raise ArchiveError(
                f"{mlf_path} is not a Model Library Format tar (no metadata.json)",
                "create it with: tvmc compile MODEL -o model.tar",
            )
        shutil.copy2(mlf_path, project_dir / MLF_NAME)
        for source, name in copies:
            if source.is_dir():
                shutil.copytree(source, project_dir / name, dirs_exist_ok=True)
            else:
                shutil.copy2(source, project_dir / name)
        yield model_dir
    except BaseException:
        # Nothing half-made is left behind (an empty directory the caller made stays as it was).
        if existed:
            for child in project_dir.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        else:
            shutil.rmtree(project_dir, ignore_errors=True)
        raise
