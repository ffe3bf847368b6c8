"""`tvmc micro create-project/build/flash` and `tvmc run` refusing bad input, through the real CLI process."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from tvmc_micro.resources import templates_dir


def tvmc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


# The smallest metadata.json the validator (microtvm_api.mlf_metadata) accepts.
VALID_METADATA = {
    "mlf_version": 1,
    "models": [{"name": "m", "signature": "00ff", "inputs": [], "outputs": []}],
}


def _fake_mlf(tmp_path: Path, metadata: object = None) -> Path:
    """A tar with a metadata.json (enough for the client-side checks before any server is involved)."""
    meta = tmp_path / "metadata.json"
    meta.write_text(
        json.dumps(metadata if metadata is not None else VALID_METADATA)
    )
    path = tmp_path / "model.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(meta, arcname="metadata.json")
    return path


def test_create_project_missing_mlf(tmp_path: Path) -> None:
    r = tvmc("micro", "create-project", str(tmp_path / "p"), str(tmp_path / "none.tar"), "crt_host")
    assert r.returncode == 2
    assert "model library format file" in r.stderr and "tvmc compile" in r.stderr


def test_create_project_mlf_that_is_not_a_tar(tmp_path: Path) -> None:
    bad = tmp_path / "model.tar"
    bad.write_bytes(b"\x00garbage" * 100)
    r = tvmc("micro", "create-project", str(tmp_path / "p"), str(bad), "crt_host")
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_create_project_mlf_without_metadata(tmp_path: Path) -> None:
    other = tmp_path / "x.txt"
    other.write_text("hi")
    path = tmp_path / "model.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(other, arcname="x.txt")
    r = tvmc("micro", "create-project", str(tmp_path / "p"), str(path), "crt_host")
    assert r.returncode == 2 and "no metadata.json" in r.stderr


def test_create_project_refuses_existing_dir_without_force(tmp_path: Path) -> None:
    mlf = _fake_mlf(tmp_path)
    project = tmp_path / "p"
    project.mkdir()
    (project / "keep.txt").write_text("mine")
    r = tvmc("micro", "create-project", str(project), str(mlf), "crt_host")
    assert r.returncode == 2 and "already exists" in r.stderr and "-f" in r.stderr
    # -f replaces projects only: a directory that is not one is left alone.
    r = tvmc("micro", "create-project", "-f", str(project), str(mlf), "crt_host")
    assert r.returncode == 2 and "not a generated project" in r.stderr
    assert (project / "keep.txt").read_text() == "mine"


def test_template_platform_needs_template_dir(tmp_path: Path) -> None:
    mlf = _fake_mlf(tmp_path)
    r = tvmc("micro", "create-project", str(tmp_path / "p"), str(mlf), "template")
    assert r.returncode == 2 and "--template-dir" in r.stderr
    r = tvmc(
        "micro", "create-project", str(tmp_path / "p"), str(mlf), "template", "--template-dir", str(tmp_path)
    )
    assert r.returncode == 2 and "is not a template" in r.stderr
    r = tvmc(
        "micro", "create-project", str(tmp_path / "p"), str(mlf), "crt_host", "--template-dir", str(tmp_path)
    )
    assert r.returncode == 2 and "only for platform 'template'" in r.stderr


def test_unknown_platform_lists_choices(tmp_path: Path) -> None:
    r = tvmc("micro", "create-project", str(tmp_path / "p"), str(_fake_mlf(tmp_path)), "arduino")
    assert r.returncode == 2 and "crt_host" in r.stderr and "cortex_m" in r.stderr


def test_bad_project_option_syntax(tmp_path: Path) -> None:
    r = tvmc(
        "micro",
        "create-project",
        str(tmp_path / "p"),
        str(_fake_mlf(tmp_path)),
        "crt_host",
        "--project-option",
        "verbose",
    )
    assert r.returncode == 2 and "not key=value" in r.stderr


def test_unknown_project_option_is_refused_by_the_server(tmp_path: Path) -> None:
    r = tvmc(
        "micro",
        "create-project",
        str(tmp_path / "p"),
        str(_fake_mlf(tmp_path)),
        "crt_host",
        "--project-option",
        "no_such_option=1",
    )
    assert r.returncode != 0 and "no_such_option" in r.stderr and "valid options" in r.stderr
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("command", [["micro", "build"], ["micro", "flash"], ["run", "--device", "micro"]])
def test_stage_commands_need_a_project(tmp_path: Path, command: list[str]) -> None:
    r = tvmc(*command, str(tmp_path / "missing"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "create-project" in r.stderr
    (tmp_path / "plain").mkdir()
    r = tvmc(*command, str(tmp_path / "plain"))
    assert r.returncode == 2 and "is not a project" in r.stderr


@pytest.mark.parametrize("command", [["micro", "build"], ["micro", "flash"], ["run"]])
def test_stage_commands_refuse_a_template(command: list[str]) -> None:
    r = tvmc(*command, str(templates_dir() / "crt_host"))
    assert r.returncode == 2 and "is a template, not a generated project" in r.stderr


def test_run_rejects_bad_counts(tmp_path: Path) -> None:
    r = tvmc("run", str(templates_dir() / "crt_host"), "--repeat", "0")
    assert r.returncode == 2 and "--repeat must be at least 1" in r.stderr


def test_help_starts_no_server() -> None:
    r = tvmc("micro", "create-project", "--help")
    assert r.returncode == 0 and "--project-option" in r.stdout and "[server]" not in r.stderr


@pytest.mark.parametrize(
    ("saved", "files", "words"),
    [
        (None, [], "next: tvmc run --device micro shown --print-time"),
        ('{"project_type": "host_driven"}', [], "next: tvmc run --device micro shown"),
        ('{"project_type": "standalone"}', [], "prints its outputs over the UART when it boots"),
        ('{"project_type": "standalone"}', ["flashed"], "saved in {p}/flashed/standalone_output.json"),
        ('{"project_type": "standalone"}', ["build"], "saved in {p}/build/standalone_output.json"),
        ('{"project_type": "mlperftiny"}', [], "next: python3 scripts/mlperftiny_runner.py shown -i in.npz"),
        ("{not json", [], "next: tvmc run --device micro shown"),  # unreadable: the default type
        ('["a list"]', [], "next: tvmc run --device micro shown"),
    ],
)
def test_flash_next_step_follows_the_saved_project_type(
    tmp_path: Path, saved: str | None, files: list[str], words: str
) -> None:
    """`tvmc micro flash` ends with the next step of the project's type (project_options.json); the cortex_m
    template tests run it through the CLI on each type."""
    from tvmc_micro.cli.micro_flash import next_step

    if saved is not None:
        (tmp_path / "project_options.json").write_text(saved)
    for where in files:
        (tmp_path / where).mkdir()
        (tmp_path / where / "standalone_output.json").write_text("{}")
    assert words.format(p=tmp_path) in next_step(tmp_path, "shown")
