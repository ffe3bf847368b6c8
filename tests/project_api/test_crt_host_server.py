"""The crt_host template server as tvmc drives it: info, generate_project, the generated project's server."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from microtvm_api import errors
from microtvm_api.client import ProjectAPIClient
from microtvm_api.conformance import _minimal_mlf

Launch = Callable[..., ProjectAPIClient]


@pytest.fixture(scope="module")
def template(repo_root: Path) -> Path:
    return repo_root / "template_projects" / "crt_host"


def test_template_info_and_options(launch: Launch, template: Path) -> None:
    info = launch(template).server_info_query()
    assert info["platform_name"] == "crt_host" and info["is_template"] is True
    assert info["model_library_format_path"] is None
    names = {o["name"]: o for o in info["project_options"]}
    assert {"verbose", "cc", "opt_level", "cflags"} <= set(names)
    assert names["cc"]["default"] == "gcc" and names["verbose"]["type"] == "bool"


def test_generate_project_then_the_generated_server(launch: Launch, template: Path, tmp_path: Path) -> None:
    mlf = _minimal_mlf(tmp_path / "model.tar")
    project = tmp_path / "proj"
    launch(template).generate_project(mlf, None, project, {"opt_level": "O3", "cflags": "-DX=1"})
    assert (project / "microtvm_api_server.py").is_file()
    assert (project / "model.tar").read_bytes() == mlf.read_bytes()
    assert (project / "model" / "metadata.json").is_file()
    assert (project / "model" / "codegen" / "host" / "src" / "conformance_lib0.c").is_file()
    if (template / "src").is_dir():
        assert (project / "src").is_dir()
    saved = json.loads((project / "project_options.json").read_text())
    assert saved["opt_level"] == "O3" and saved["cflags"] == "-DX=1" and saved["cc"] == "gcc"
    info = launch(project).server_info_query()
    assert info["is_template"] is False
    assert info["model_library_format_path"] == str((project / "model.tar").resolve())
    # A generated project is not a template any more.
    with pytest.raises(errors.NotImplementedInTemplateError, match="generated project"):
        launch(project).generate_project(mlf, None, tmp_path / "again", {})


def test_generate_project_refuses_bad_inputs(launch: Launch, template: Path, tmp_path: Path) -> None:
    client = launch(template)
    mlf = _minimal_mlf(tmp_path / "model.tar")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(errors.ProjectExistsError, match="already exists") as info:
        client.generate_project(mlf, None, existing, {})
    assert "-f" in (info.value.hint or "")
    assert (existing / "keep.txt").read_text() == "mine"
    with pytest.raises(errors.ArchiveError, match="does not exist"):
        client.generate_project(tmp_path / "none.tar", None, tmp_path / "p1", {})
    not_mlf = tmp_path / "not_mlf.tar"
    with tarfile.open(not_mlf, "w") as tar:
        tar.add(mlf, arcname="something_else.tar")
    with pytest.raises(errors.ArchiveError, match=r"no metadata\.json"):
        client.generate_project(not_mlf, None, tmp_path / "p2", {})
    assert not (tmp_path / "p2").exists()
    with pytest.raises(errors.InvalidOptionError, match="opt_level"):
        client.generate_project(mlf, None, tmp_path / "p3", {"opt_level": "O9"})


def test_unsafe_mlf_is_refused_and_nothing_escapes(launch: Launch, template: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        (tmp_path / "payload").write_text("x")
        tar.add(tmp_path / "payload", arcname="../../escaped.txt")
    with pytest.raises(errors.UnsafeArchiveError, match=r"'\.\.' component"):
        launch(template).generate_project(evil, None, tmp_path / "a" / "b" / "proj", {})
    assert not (tmp_path / "a" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_unimplemented_methods_say_so(launch: Launch, template: Path) -> None:
    client = launch(template)
    with pytest.raises(errors.NotImplementedInTemplateError, match="does not implement build yet"):
        client.build({})
