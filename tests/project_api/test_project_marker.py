"""The generated-project marker and where a project may be generated (issue 12 #1): the rules
`create-project -f` and generate_project apply, on real directories."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from microtvm_api.client import ProjectAPIClient
from microtvm_api.conformance import _minimal_mlf
from microtvm_api.errors import InvalidParamsError, ProjectExistsError
from microtvm_api.new_project import new_project
from microtvm_api.project_marker import MARKER_NAME, removal_problem, template_overlap

Launch = Callable[..., ProjectAPIClient]


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    extra = tmp_path / "server.py"
    extra.write_text("# server\n")
    with new_project(_minimal_mlf(tmp_path / "m.tar"), project, [(extra, "microtvm_api_server.py")],
                     platform="x") as model_dir:
        (model_dir.parent / "generated.c").write_text("int x;\n")  # a template's own step
    return project


def test_a_generated_project_is_removable_until_someone_adds_or_changes_a_file(generated: Path) -> None:
    marker = json.loads((generated / MARKER_NAME).read_text())
    expected = {"microtvm_api_server.py", "model.tar", "generated.c", "model/metadata.json"}
    assert expected <= set(marker["files"])
    assert removal_problem(generated) is None
    (generated / "build" / "sub").mkdir(parents=True)
    (generated / "build" / "sub" / "a.o").write_bytes(b"obj")
    assert removal_problem(generated) is None  # build/ is what `build` writes (and `build -f` deletes)
    os.mkfifo(generated / "pipe")
    (generated / "model" / "link").symlink_to("/etc/passwd")
    for i in range(6):
        (generated / f"extra{i}.txt").write_text("mine")
    problem = removal_problem(generated)
    assert problem is not None
    assert problem.startswith("holds files tvmc did not write: extra0.txt, extra1.txt")
    assert "(and 3 more)" in problem


def test_a_changed_file_or_a_linked_output_dir_blocks_removal(generated: Path) -> None:
    (generated / "generated.c").write_text("int y;\n")
    assert removal_problem(generated) == "has files changed since it was generated: generated.c"
    (generated / "generated.c").write_text("int x;\n")
    (generated / "build").symlink_to(generated.parent)
    assert removal_problem(generated) == "holds files tvmc did not write: build (a symbolic link)"


@pytest.mark.parametrize(
    "marker",
    [
        "not json",
        json.dumps(["a list"]),
        json.dumps({"format": "something else", "files": {}, "output_dirs": []}),
        json.dumps({"format": "tvmc-micro generated project", "files": [], "output_dirs": []}),
        json.dumps({"format": "tvmc-micro generated project", "files": {"a": 1}, "output_dirs": []}),
        json.dumps({"format": "tvmc-micro generated project", "files": {}, "output_dirs": ["../.."]}),
        json.dumps({"format": "tvmc-micro generated project", "files": {}, "output_dirs": "build"}),
    ],
)
def test_an_invalid_marker_is_no_marker(tmp_path: Path, marker: str) -> None:
    (tmp_path / MARKER_NAME).write_text(marker)
    assert "has no valid .tvmc-project.json: it is not a generated project" in str(removal_problem(tmp_path))


def test_a_marker_that_is_a_link_or_huge_is_no_marker(generated: Path, tmp_path: Path) -> None:
    marker = generated / MARKER_NAME
    marker.rename(tmp_path / "real_marker.json")
    marker.symlink_to(tmp_path / "real_marker.json")
    assert "has no valid" in str(removal_problem(generated))
    marker.unlink()
    with open(marker, "wb") as handle:
        handle.truncate(17 * 1024 * 1024)  # sparse: costs no disk
    assert "has no valid" in str(removal_problem(generated))


def test_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert removal_problem(tmp_path / "file") == "is not a directory"


def test_template_overlap(tmp_path: Path) -> None:
    template = tmp_path / "tpl"
    (template / "src").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(template)
    assert template_overlap(template, template) == f"is the template directory {template}"
    inside = template_overlap(tmp_path / "alias" / "p", template)
    assert inside == f"is inside the template directory {template}"
    assert template_overlap(tmp_path, template) == f"contains the template directory {template}"
    assert template_overlap(tmp_path / "elsewhere", template) is None


def test_new_project_refuses_relative_linked_and_template_paths(tmp_path: Path) -> None:
    mlf = _minimal_mlf(tmp_path / "m.tar")
    with pytest.raises(InvalidParamsError, match="project_dir 'rel' is a relative path"):
        with new_project(mlf, Path("rel"), platform="x"):
            pass
    assert not Path("rel").exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(ProjectExistsError, match="is a symbolic link; a project is never generated through"):
        with new_project(mlf, tmp_path / "link", platform="x"):
            pass
    with pytest.raises(InvalidParamsError, match="is inside the template directory"):
        with new_project(mlf, tmp_path / "tpl" / "p", platform="x", template_dir=tmp_path / "tpl"):
            pass
    assert list((tmp_path / "empty").iterdir()) == [] and not (tmp_path / "tpl").exists()


def test_the_template_server_refuses_a_project_inside_itself(
    launch: Launch, repo_root: Path, tmp_path: Path
) -> None:
    template = repo_root / "template_projects" / "crt_host"
    with pytest.raises(InvalidParamsError, match="is inside the template directory") as info:
        launch(template).generate_project(_minimal_mlf(tmp_path / "m.tar"), None, template / "sneaky", {})
    assert info.value.data.get("param") == "project_dir"
    assert not (template / "sneaky").exists()
