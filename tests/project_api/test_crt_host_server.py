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


def test_template_refuses_project_only_methods(launch: Launch, template: Path) -> None:
    client = launch(template)
    with pytest.raises(errors.NotImplementedInTemplateError, match="runs in a generated project") as info:
        client.build({})
    assert "create-project" in (info.value.hint or "")


@pytest.fixture(scope="module")
def tiny_mlf(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    """The device protocol's hand-written tiny model (y = 2x + 1) as an MLF tar carrying the runtime/."""
    reference = pytest.importorskip("tvmc_micro.device.reference_model")
    root = tmp_path_factory.mktemp("tiny")
    model_dir = reference.write_tiny_mlf(root / "tiny")
    path = root / "tiny.tar"
    runtime = repo_root / "runtime"
    with tarfile.open(path, "w") as tar:
        for file in sorted(model_dir.rglob("*")):
            if file.is_file():
                tar.add(file, arcname=file.relative_to(model_dir).as_posix())
        for file in sorted(runtime.rglob("*")):
            if file.is_file() and file.relative_to(runtime).parts[0] != "test":
                tar.add(file, arcname=f"runtime/{file.relative_to(runtime).as_posix()}")
    return path


def _project(launch: Launch, template: Path, mlf: Path, where: Path, **options: str) -> Path:
    launch(template).generate_project(mlf, None, where, options)
    return where


@pytest.mark.slow
def test_build_flash_and_run_through_the_project_api(
    launch: Launch, template: Path, tiny_mlf: Path, tmp_path: Path
) -> None:
    session_mod = pytest.importorskip("tvmc_micro.device.session")
    from microtvm_api.client import ServerTransport

    project = _project(launch, template, tiny_mlf, tmp_path / "proj", opt_level="O1")
    client = launch(project)
    with pytest.raises(errors.ServerError, match="run build first"):
        client.flash({})
    with pytest.raises(errors.ServerError, match="flash the project first"):
        client.open_transport({})
    with pytest.raises(errors.TransportClosedError, match="not open"):
        client.read_transport(1, 0.1)
    client.build({})
    assert (project / "build" / "firmware").is_file()
    assert "+ cd " in client.stderr_tail(50) and "-O1" in client.stderr_tail(50)  # the logged command
    client.flash({})
    transport = ServerTransport(client)
    assert transport.timeouts["session_start_timeout_sec"] == 10.0
    with session_mod.DeviceSession(transport) as session:
        assert session.info().model_name == "tiny"
        session.set_input(0, bytes([1, 2, 3, 250]))
        session.run()
        assert session.get_output(0) == bytes([3, 5, 7, 245])
    transport.close()
    with pytest.raises(errors.TransportClosedError):
        client.write_transport(b"x", 0.1)


@pytest.mark.slow
def test_build_failures_are_reported(launch: Launch, template: Path, tiny_mlf: Path, tmp_path: Path) -> None:
    project = _project(launch, template, tiny_mlf, tmp_path / "proj", cc="no-such-cc-xyz")
    client = launch(project)
    with pytest.raises(errors.ToolNotFoundError, match="no-such-cc-xyz not found"):
        client.build({})
    # Option values reach the compiler as arguments, never through a shell.
    with pytest.raises(errors.CommandFailedError) as info:
        client.build(
            {"cc": "gcc", "cflags": "-DBROKEN=1 -include /nonexistent/header.h; touch /tmp/pwned_crt"}
        )
    assert "failed with exit code" in info.value.message and "nonexistent/header.h" in info.value.message
    assert not Path("/tmp/pwned_crt").exists()


def test_client_sends_paths_resolved_against_its_own_cwd(
    launch: Launch, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's cwd is the template: relative paths must be resolved by the client, never there.
    _minimal_mlf(tmp_path / "model.tar")
    monkeypatch.chdir(tmp_path)
    launch(template).generate_project("model.tar", None, "rel_proj", {})
    assert (tmp_path / "rel_proj" / "model.tar").is_file()
    assert not (template / "rel_proj").exists()
