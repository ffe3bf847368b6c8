"""Project API server of the `crt_host` template: the model as a host executable, talking over its pipes.

In the template directory it generates projects; in a generated project it builds, flashes and opens the
transport. The generated project holds: this server, the template's `src/` (the firmware main loop),
`model.tar` (the MLF as given), `model/` (the MLF extracted) and `project_options.json` (the options the
project was created with, used as defaults by later calls).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microtvm_api.archive import safe_extract
from microtvm_api.errors import ArchiveError, NotImplementedInTemplateError, ProjectExistsError
from microtvm_api.options import ProjectOption, load_options, save_options
from microtvm_api.server import ProjectAPIHandler, ServerInfo, TransportTimeouts, main

HERE = Path(__file__).resolve().parent
MLF_NAME = "model.tar"
MLF_DIR = "model"
# What generate_project copies from the template into a new project (when present).
TEMPLATE_FILES = ("microtvm_api_server.py", "src")

_BUILD_METHODS = ("generate_project", "build")
PROJECT_OPTIONS = (
    ProjectOption("verbose", "bool", False, "show every command and its output", optional=_BUILD_METHODS),
    ProjectOption("cc", "str", "gcc", "the host C compiler to build with", optional=_BUILD_METHODS),
    ProjectOption(
        "opt_level", "str", "O2", "optimisation level", choices=("O0", "O1", "O2", "O3", "Os"),
        optional=_BUILD_METHODS,
    ),
    ProjectOption("cflags", "str", "", "extra compiler flags, separated by spaces", optional=_BUILD_METHODS),
)


class CrtHostHandler(ProjectAPIHandler):
    project_options = PROJECT_OPTIONS

    def __init__(self, project_dir: Path = HERE) -> None:
        self.project_dir = project_dir

    @property
    def is_template(self) -> bool:
        return not (self.project_dir / MLF_NAME).is_file()

    def saved_option_values(self) -> Mapping[str, Any]:
        return {} if self.is_template else load_options(self.project_dir)

    def server_info_query(self, tvm_version: str) -> ServerInfo:
        return ServerInfo(
            platform_name="crt_host",
            is_template=self.is_template,
            model_library_format_path=None if self.is_template else str(self.project_dir / MLF_NAME),
            project_options=self.project_options,
            capabilities=("generate_project",) if self.is_template else (),
        )

    def generate_project(
        self,
        model_library_format_path: Path,
        standalone_crt_dir: Path | None,
        project_dir: Path,
        options: Mapping[str, Any],
    ) -> None:
        # The C runtime comes inside the MLF (runtime/), so standalone_crt_dir is not needed.
        if not self.is_template:
            raise NotImplementedInTemplateError(
                f"{self.project_dir} is a generated project, not a template",
                "run generate_project from the template directory (tvmc micro create-project ... crt_host)",
            )
        if not model_library_format_path.is_file():
            raise ArchiveError(
                f"model library format file {model_library_format_path} does not exist",
                "create it with: tvmc compile MODEL -o model.tar",
            )
        if project_dir.exists() and (not project_dir.is_dir() or any(project_dir.iterdir())):
            raise ProjectExistsError(
                f"{project_dir} already exists and is not empty",
                "choose a new directory, or pass -f to tvmc micro create-project to replace it",
            )
        project_dir.mkdir(parents=True, exist_ok=True)
        safe_extract(model_library_format_path, project_dir / MLF_DIR)
        if not (project_dir / MLF_DIR / "metadata.json").is_file():
            shutil.rmtree(project_dir)
            raise ArchiveError(
                f"{model_library_format_path} is not a Model Library Format tar (no metadata.json)",
                "create it with: tvmc compile MODEL -o model.tar",
            )
        shutil.copy2(model_library_format_path, project_dir / MLF_NAME)
        for name in TEMPLATE_FILES:
            source = HERE / name
            if source.is_dir():
                shutil.copytree(source, project_dir / name)
            elif source.is_file():
                shutil.copy2(source, project_dir / name)
        save_options(project_dir, options)

    def build(self, options: Mapping[str, Any]) -> None:
        raise self._not_yet("build")

    def flash(self, options: Mapping[str, Any]) -> None:
        raise self._not_yet("flash")

    def open_transport(self, options: Mapping[str, Any]) -> TransportTimeouts:
        raise self._not_yet("open_transport")

    def close_transport(self) -> None:
        raise self._not_yet("close_transport")

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        raise self._not_yet("read_transport")

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        raise self._not_yet("write_transport")

    def _not_yet(self, method: str) -> NotImplementedInTemplateError:
        return NotImplementedInTemplateError(
            f"the crt_host template does not implement {method} yet",
            "this comes with the device runtime; only server_info_query and generate_project work today",
        )


if __name__ == "__main__":
    main(CrtHostHandler)
