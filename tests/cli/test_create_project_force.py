"""`tvmc micro create-project -f` replaces only a project tvmc generated, unchanged (issue 12 #1), through
the real CLI in a subprocess with real directories: never a template, a user's directory, a symlink's
target, or a project holding files the user added or changed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from microtvm_api.conformance import _minimal_mlf
from microtvm_api.project_marker import MARKER_NAME
from tvmc_micro.resources import templates_dir


def tvmc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` with its SHA-256 (what must survive a refused -f byte for byte)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def mlf(tmp_path: Path) -> Path:
    return _minimal_mlf(tmp_path / "model.tar")


@pytest.fixture
def project(tmp_path: Path, mlf: Path) -> Path:
    path = tmp_path / "proj"
    done = tvmc("micro", "create-project", str(path), str(mlf), "crt_host")
    assert done.returncode == 0, done.stderr
    return path


def test_force_on_the_template_is_refused_and_the_template_survives(mlf: Path) -> None:
    template = templates_dir() / "crt_host"
    before = _tree(template)
    done = tvmc("micro", "create-project", "-f", str(template), str(mlf), "crt_host")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"is the template directory {template.resolve()}" in done.stderr
    assert _tree(template) == before


def test_force_on_a_user_directory_with_a_stray_server_file(tmp_path: Path, mlf: Path) -> None:
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.txt").write_text("three years of work")
    (mine / "microtvm_api_server.py").write_text("# a stray copy\n")
    done = tvmc("micro", "create-project", "-f", str(mine), str(mlf), "crt_host")
    assert done.returncode == 2
    assert f"has no valid {MARKER_NAME}: it is not a generated project" in done.stderr
    assert (mine / "thesis.txt").read_text() == "three years of work"
    assert (mine / "microtvm_api_server.py").is_file()


def test_force_replaces_an_unchanged_project_and_its_build_outputs(project: Path, mlf: Path) -> None:
    marker = json.loads((project / MARKER_NAME).read_text())
    assert marker["platform"] == "crt_host" and marker["model"] == "conformance"
    assert marker["signature"] == "0123456789abcdef" and "model.tar" in marker["files"]
    assert marker["mlf_sha256"] == hashlib.sha256(mlf.read_bytes()).hexdigest()
    (project / "build").mkdir()
    (project / "build" / "firmware").write_bytes(b"\x7fELF")
    (project / "flashed").mkdir()
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"pyc")
    done = tvmc("micro", "create-project", "-f", str(project), str(mlf), "crt_host")
    assert done.returncode == 0, done.stderr
    assert not (project / "build").exists() and (project / MARKER_NAME).is_file()


def test_force_refuses_a_project_with_added_or_changed_files(project: Path, mlf: Path) -> None:
    (project / "notes").mkdir()
    (project / "notes" / "results.md").write_text("mine")
    done = tvmc("micro", "create-project", "-f", str(project), str(mlf), "crt_host")
    assert done.returncode == 2 and "holds files tvmc did not write: notes/results.md" in done.stderr
    assert (project / "notes" / "results.md").read_text() == "mine"
    (project / "notes" / "results.md").unlink()
    main_c = project / "src" / "main.c"
    main_c.write_text(main_c.read_text() + "\n/* my change */\n")
    done = tvmc("micro", "create-project", "-f", str(project), str(mlf), "crt_host")
    assert done.returncode == 2 and "has files changed since it was generated: src/main.c" in done.stderr
    assert main_c.read_text().endswith("/* my change */\n")


def test_a_symlink_is_never_followed(tmp_path: Path, project: Path, mlf: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(project)
    before = _tree(project)
    done = tvmc("micro", "create-project", "-f", str(link), str(mlf), "crt_host")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{link} is a symbolic link (to {project}), and links are never followed" in done.stderr
    assert link.is_symlink() and _tree(project) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "link2").symlink_to(empty)
    done = tvmc("micro", "create-project", str(tmp_path / "link2"), str(mlf), "crt_host")
    assert done.returncode == 2
    assert "is a symbolic link; a project is never generated through a link" in done.stderr
    assert list(empty.iterdir()) == []


def test_no_project_inside_a_template(mlf: Path) -> None:
    inside = templates_dir() / "crt_host" / "my_project"
    done = tvmc("micro", "create-project", str(inside), str(mlf), "crt_host")
    assert done.returncode == 2 and "is inside the template directory" in done.stderr
    assert not inside.exists()


def test_a_relative_project_dir_is_made_in_the_users_directory(tmp_path: Path, mlf: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = tvmc("micro", "create-project", "rel_proj", str(mlf), "crt_host", cwd=work)
    assert done.returncode == 0, done.stderr
    assert (work / "rel_proj" / MARKER_NAME).is_file()
    assert not (templates_dir() / "crt_host" / "rel_proj").exists()


def test_a_bad_option_is_reported_before_force_removes_anything(project: Path, mlf: Path) -> None:
    done = tvmc("micro", "create-project", "-f", str(project), str(mlf), "crt_host",
                "--project-option", "opt_level=O9")
    assert done.returncode == 2 and "'opt_level' is 'O9', not one of" in done.stderr
    assert (project / MARKER_NAME).is_file() and (project / "model.tar").is_file()
