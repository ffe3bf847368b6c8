"""What every template shares: a new project directory holding the MLF, and the server base that tells a
template from a project generated from it.

A template server calls `new_project(...)` and adds its own files inside the `with` block; any failure,
its own included, removes the half-made project, so a failed create-project leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from microtvm_api.archive import safe_extract
from microtvm_api.errors import ArchiveError, NotImplementedInTemplateError, ProjectExistsError
from microtvm_api.mlf_metadata import load_metadata
from microtvm_api.options import load_options
from microtvm_api.server import ProjectAPIHandler, ServerInfo

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
    and archives past the limits refused, metadata.json validated), keep the tar as
    `project_dir/model.tar`, copy each (source, name) of `copies` into the
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
        load_metadata(model_dir / "metadata.json")  # InvalidMetadataError naming the field
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


class TemplateHandler(ProjectAPIHandler):
    """Base of a server that lives in a template directory and is copied into each project it generates
    (with `new_project`): the directory is a project once it holds `model.tar`. Subclasses set
    `platform_name` and `project_options` and implement the methods."""

    platform_name: ClassVar[str]

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir

    @property
    def is_template(self) -> bool:
        return not (self.project_dir / MLF_NAME).is_file()

    def saved_option_values(self) -> Mapping[str, Any]:
        return {} if self.is_template else load_options(self.project_dir)

    def server_info_query(self, tvm_version: str) -> ServerInfo:
        return ServerInfo(
            platform_name=self.platform_name,
            is_template=self.is_template,
            model_library_format_path=None if self.is_template else str(self.project_dir / MLF_NAME),
            project_options=self.project_options,
            capabilities=("generate_project",) if self.is_template else ("build", "flash", "transport"),
        )

    def require_template(self) -> None:
        """generate_project runs in the template, not in a project made from it."""
        if not self.is_template:
            raise NotImplementedInTemplateError(
                f"{self.project_dir} is a generated project, not a template",
                f"run it from the template (tvmc micro create-project DIR model.tar {self.platform_name})",
            )
