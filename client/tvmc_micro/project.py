"""The client's view of templates and generated projects: find them, launch their server, read their MLF.

Shared by `tvmc micro create-project/build/flash` and `tvmc run --device micro`; everything about
talking to a server lives in `microtvm_api.client`, everything about options in `microtvm_api.options`.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from microtvm_api.archive import read_member
from microtvm_api.client import SERVER_FILE, ProjectAPIClient
from microtvm_api.errors import ProjectAPIError
from microtvm_api.mlf_metadata import MAX_METADATA_BYTES, parse_metadata
from microtvm_api.options import ProjectOption, absolute_paths, parse_key_values, resolve
from microtvm_api.project_marker import removal_problem, template_overlap

from tvmc_micro.errors import TvmcError
from tvmc_micro.platforms import canonical_platform


def template_dir_for(platform: str, template_dir: str | None) -> Path:
    """The template directory for PLATFORM (`template` means the user's --template-dir)."""
    platform = canonical_platform(platform)
    if platform == "template":
        if not template_dir:
            raise TvmcError(
                "platform 'template' needs --template-dir DIR",
                "point --template-dir at a directory holding a microtvm_api_server.py",
            )
        path = Path(template_dir)
    else:
        if template_dir:
            raise TvmcError(
                f"--template-dir is only for platform 'template', not {platform!r}",
                f"drop --template-dir, or write: ... template --template-dir {template_dir}",
            )
        from tvmc_micro.resources import templates_dir

        path = templates_dir() / platform
    if not (path / SERVER_FILE).is_file():
        raise TvmcError(
            f"{path} is not a template: it has no {SERVER_FILE}",
            "a template directory holds the Project API server of its platform",
        )
    return path


def option_values(items: Sequence[str]) -> dict[str, str]:
    """`--project-option k=v` strings → {k: v} (typed and checked by the server, which declares them)."""
    try:
        values: dict[str, str] = parse_key_values(items)
    except ProjectAPIError as err:
        raise TvmcError(err.message, err.hint) from None
    return values


def check_options(info: dict[str, Any], values: dict[str, str], method: str = "generate_project") -> None:
    """Check `--project-option` values against the options the server declares (as it will), so a typo is
    reported before anything is changed. A server whose declarations cannot be read is left to check.
    Relative values of path options are checked as the client sends them: made absolute here."""
    try:
        declared = [ProjectOption.from_json(o) for o in info.get("project_options") or []]
    except ValueError:
        return
    try:
        resolve(declared, method, absolute_paths(declared, values))
    except ProjectAPIError as err:
        raise TvmcError(err.message, err.hint) from None


@contextlib.contextmanager
def launched(server_dir: Path, *, verbose: int = 0) -> Iterator[tuple[ProjectAPIClient, dict[str, Any]]]:
    """Start the server of a template or project dir, ask who it is, stop it on exit."""
    with ProjectAPIClient.launch(server_dir, debug=verbose >= 2) as client:
        info = client.server_info_query()
        yield client, info


def require_project(project_dir: str) -> Path:
    """A generated project directory (has a server); a clear error for anything else."""
    path = Path(project_dir)
    if not path.is_dir():
        raise TvmcError(
            f"project directory {path} does not exist",
            "create it first: tvmc micro create-project PROJECT_DIR model.tar crt_host",
        )
    if not (path / SERVER_FILE).is_file():
        raise TvmcError(
            f"{path} is not a project: it has no {SERVER_FILE}",
            "pass the directory made by tvmc micro create-project",
        )
    return path


def check_is_project(info: dict[str, Any], project_dir: Path, platform: str | None) -> None:
    """Refuse a template where a project is expected, and a PLATFORM that names another platform."""
    if info.get("is_template"):
        raise TvmcError(
            f"{project_dir} is a template, not a generated project",
            f"create a project from it: tvmc micro create-project NEW_DIR model.tar {info['platform_name']}",
        )
    if platform:
        platform = canonical_platform(platform)
    if platform and platform != "template" and platform != info.get("platform_name"):
        raise TvmcError(
            f"{project_dir} is a {info.get('platform_name')!r} project, not {platform!r}",
            "drop the PLATFORM argument (tvmc reads it from the project), or pass the right project dir",
        )


def check_outside_template(project_dir: Path, template: Path) -> None:
    """A project is never made inside (or over) a template, nor anywhere in the repository's templates."""
    from tvmc_micro.resources import templates_dir

    for root in (template, templates_dir()):
        overlap = template_overlap(project_dir, root)
        if overlap:
            raise TvmcError(
                f"{project_dir} {overlap}; a project is never created there",
                "create the project somewhere outside the template directories",
            )


def remove_existing_project(project_dir: Path) -> None:
    """For `create-project -f`: remove a previous project, but only one tvmc generated and nothing else.

    Not a symlink (nor its target), not a template, not a directory without the project marker, not a
    project holding files the user added or changed (microtvm_api.project_marker.removal_problem)."""
    if not project_dir.is_symlink():
        if not project_dir.exists():
            return
        if project_dir.is_dir() and not any(project_dir.iterdir()):
            return
    problem = removal_problem(project_dir)
    if problem:
        raise TvmcError(
            f"{project_dir} {problem}; it was left as it was",
            "-f replaces only a project tvmc generated, with nothing added or changed: choose another "
            "directory, or move your files out (or remove the directory yourself)",
        )
    shutil.rmtree(project_dir)  # an OSError (permissions) is reported by the CLI as its message


def read_mlf_metadata(mlf_path: str | Path) -> dict[str, Any]:
    """metadata.json of an MLF tar, validated (read in place, size-capped, nothing extracted)."""
    path = Path(mlf_path)
    try:
        data = read_member(path, "metadata.json", MAX_METADATA_BYTES)
        if data is None:
            raise TvmcError(
                f"{path} has no metadata.json: not a Model Library Format tar",
                "create it with: tvmc compile MODEL -o model.tar",
            )
        return parse_metadata(data, f"{path}: metadata.json")
    except ProjectAPIError as err:
        raise TvmcError(err.message, err.hint) from None


def project_model(info: dict[str, Any], project_dir: Path) -> dict[str, Any]:
    """The model entry of the MLF a project was generated from (as its server reports it)."""
    mlf = info.get("model_library_format_path")
    if not mlf:
        raise TvmcError(
            f"the server of {project_dir} reports no model_library_format_path",
            "regenerate the project with tvmc micro create-project",
        )
    mlf_path = Path(mlf)
    if not mlf_path.is_absolute():
        mlf_path = project_dir / mlf_path
    model: dict[str, Any] = read_mlf_metadata(mlf_path)["models"][0]
    return model
