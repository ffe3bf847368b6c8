"""What every template shares: a new project directory holding the MLF, and the server base that tells a
template from a project generated from it.

A template server calls `new_project(...)` and adds its own files inside the `with` block; any failure,
its own included, removes the half-made project, so a failed create-project leaves nothing behind. A
finished project carries `.tvmc-project.json` (microtvm_api.project_marker), which is what lets
`create-project -f` replace it, and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from microtvm_api.archive import safe_extract
from microtvm_api.errors import (
    ArchiveError,
    InvalidParamsError,
    NotImplementedInTemplateError,
    ProjectExistsError,
)
from microtvm_api.handler import ProjectAPIHandler, ServerInfo
from microtvm_api.mlf_metadata import load_metadata
from microtvm_api.options import load_options
from microtvm_api.project_marker import OUTPUT_DIRS, template_overlap, write_marker

MLF_NAME = "model.tar"  # the MLF as given, kept in the project (its server reports this path)
MODEL_DIR = "model"  # the MLF extracted


@contextlib.contextmanager
def new_project(
    mlf_path: Path,
    project_dir: Path,
    copies: Iterable[tuple[Path, str]] = (),
    *,
    platform: str,
    template_dir: Path | None = None,
    output_dirs: tuple[str, ...] = OUTPUT_DIRS,
) -> Iterator[Path]:
    """Check the inputs, create `project_dir`, extract the MLF into `project_dir/model` (unsafe members
    and archives past the limits refused, metadata.json validated), keep the tar as
    `project_dir/model.tar`, copy each (source, name) of `copies` into the project; yield the extracted
    model directory. When the caller's block ends, write the project marker (`.tvmc-project.json`,
    listing every file the generator wrote) that `create-project -f` relies on.

    `project_dir` must be absolute (a relative one would land in the server's working directory, the
    template) and outside `template_dir`; `output_dirs` are the directories later steps write."""
    _check_project_dir(project_dir, template_dir, platform)
    if not mlf_path.is_file():
        raise ArchiveError(
            f"model library format file {mlf_path} does not exist",
            "create it with: tvmc compile MODEL -o model.tar",
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
        metadata = load_metadata(model_dir / "metadata.json")
        shutil.copy2(mlf_path, project_dir / MLF_NAME)
        for source, name in copies:
            if source.is_dir():
                shutil.copytree(source, project_dir / name, dirs_exist_ok=True)
            else:
                shutil.copy2(source, project_dir / name)
        yield model_dir
        write_marker(
            project_dir,
            platform=platform,
            model=metadata["models"][0],
            mlf_sha256=hashlib.sha256((project_dir / MLF_NAME).read_bytes()).hexdigest(),
            tool=metadata.get("tool"),
            output_dirs=output_dirs,
        )
    except BaseException:
        # Nothing half-made is left behind (an empty directory the caller made stays as it was).
        if existed:
            for child in project_dir.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        else:
            shutil.rmtree(project_dir, ignore_errors=True)
        raise


def _check_project_dir(project_dir: Path, template_dir: Path | None, platform: str) -> None:
    """Refuse a project_dir that is relative, a link, inside the template, or an existing non-empty dir."""
    if not project_dir.is_absolute():
        raise InvalidParamsError(
            f"project_dir {str(project_dir)!r} is a relative path; it would be created inside the "
            "server's working directory (the template)",
            "pass an absolute project_dir (tvmc resolves it against your working directory)",
            data={"param": "project_dir"},
        )
    if project_dir.is_symlink():
        raise ProjectExistsError(
            f"{project_dir} is a symbolic link; a project is never generated through a link",
            "choose a new directory (or remove the link yourself)",
        )
    overlap = template_overlap(project_dir, template_dir) if template_dir is not None else None
    if overlap:
        raise InvalidParamsError(
            f"project_dir {project_dir} {overlap}; a project is never generated there",
            "generate the project somewhere outside the template directory",
            data={"param": "project_dir"},
        )
    if project_dir.exists() and (not project_dir.is_dir() or any(project_dir.iterdir())):
        raise ProjectExistsError(
            f"{project_dir} already exists and is not empty",
            f"choose a new directory, or pass -f to tvmc micro create-project ... {platform}",
        )


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
