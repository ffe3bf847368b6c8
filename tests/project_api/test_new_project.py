"""`new_project`: the generate_project steps every template shares, and that nothing half-made survives."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from microtvm_api.errors import ArchiveError, ProjectExistsError, UnsafeArchiveError
from microtvm_api.new_project import new_project

# The smallest metadata.json the validator accepts (mlf_metadata): one model, its name and signature.
META = json.dumps({"models": [{"name": "m", "signature": "00ff", "inputs": [], "outputs": []}]}).encode()


def _tar(tmp_path: Path, members: dict[str, bytes]) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    path = tmp_path / "model.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            f = src / name.replace("/", "_")
            f.write_bytes(data)
            tar.add(f, arcname=name)
    return path


def test_makes_the_project(tmp_path: Path) -> None:
    mlf = _tar(tmp_path, {"metadata.json": META, "codegen/a.c": b"int a;"})
    extra = tmp_path / "server.py"
    extra.write_text("# server")
    project = tmp_path / "p"
    with new_project(mlf, project, [(extra, "microtvm_api_server.py")], platform="x") as model_dir:
        assert model_dir == project / "model"
    assert (project / "model" / "codegen" / "a.c").read_bytes() == b"int a;"
    assert (project / "model.tar").read_bytes() == mlf.read_bytes()
    assert (project / "microtvm_api_server.py").read_text() == "# server"


def test_refusals_leave_nothing(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        with new_project(tmp_path / "none.tar", tmp_path / "p", platform="x"):
            pass
    assert not (tmp_path / "p").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep")
    mlf = _tar(tmp_path, {"metadata.json": META})
    with pytest.raises(ProjectExistsError, match="not empty"):
        with new_project(mlf, busy, platform="x"):
            pass
    assert (busy / "mine.txt").read_text() == "keep"


def test_tar_without_metadata_is_removed_again(tmp_path: Path) -> None:
    mlf = _tar(tmp_path, {"readme.txt": b"hi"})
    with pytest.raises(ArchiveError, match=r"no metadata\.json"):
        with new_project(mlf, tmp_path / "p", platform="x"):
            pass
    assert not (tmp_path / "p").exists()


def test_unsafe_member_is_refused(tmp_path: Path) -> None:
    mlf = _tar(tmp_path, {"../escape.txt": b"x", "metadata.json": META})
    with pytest.raises(UnsafeArchiveError):
        with new_project(mlf, tmp_path / "deep" / "p", platform="x"):
            pass
    assert not (tmp_path / "deep" / "escape.txt").exists() and not (tmp_path / "deep" / "p").exists()


def test_failure_in_the_template_step_cleans_up_but_keeps_an_existing_empty_dir(tmp_path: Path) -> None:
    mlf = _tar(tmp_path, {"metadata.json": META})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="template step"):
        with new_project(mlf, empty, platform="x"):
            raise RuntimeError("template step failed")
    assert empty.is_dir() and list(empty.iterdir()) == []
