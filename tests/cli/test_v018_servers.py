"""The CLI with v0.18-style template servers and v0.18 command-line forms (issue 13): template options in
`create-project ... PLATFORM --help` and `--list-options`, `build/flash DIR template --template-dir D`,
create-project through a v0.18 server, and `tvmc run` through a server whose transport timeouts are 0."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from microtvm_api.conformance import _minimal_mlf

SERVERS = Path(__file__).resolve().parent.parent / "project_api" / "servers"


def tvmc(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _v018_template(tmp_path: Path) -> Path:
    template = tmp_path / "v018_template"
    template.mkdir()
    shutil.copy2(SERVERS / "v018_ported_server.py", template / "microtvm_api_server.py")
    return template


def test_help_after_platform_lists_the_template_options(tmp_path: Path) -> None:
    r = tvmc("micro", "create-project", str(tmp_path / "p"), "model.tar", "crt", "--help")
    assert r.returncode == 0, r.stderr
    assert "project options of the crt_host template" in r.stdout
    assert "--project-option opt_level=O0|O1|O2|O3|Os (default 'O2')" in r.stdout
    assert "--project-option project_type=host_driven" in r.stdout
    plain = tvmc("micro", "create-project", "--help")
    assert plain.returncode == 0 and "project options of" not in plain.stdout  # no server started
    template = _v018_template(tmp_path)
    v018 = tvmc("micro", "create-project", "p", "m.tar", "template", "--template-dir", str(template), "-h")
    assert "--project-option workspace_size_bytes=<int> (default 2097152)" in v018.stdout


def test_help_says_why_when_the_template_cannot_be_read(tmp_path: Path) -> None:
    r = tvmc("micro", "create-project", "p", "m.tar", "template", "--help")
    assert r.returncode == 0 and "usage:" in r.stdout
    assert "cannot list the options of 'template'" in r.stderr and "--template-dir" in r.stderr


def test_list_options_creates_nothing(tmp_path: Path) -> None:
    r = tvmc("micro", "create-project", str(tmp_path / "p"), "missing.tar", "crt_host", "--list-options")
    assert r.returncode == 0, r.stderr
    assert "--project-option cc=<str> (default 'gcc')" in r.stdout
    assert not (tmp_path / "p").exists()


def test_create_project_through_a_v018_server(tmp_path: Path) -> None:
    template = _v018_template(tmp_path)
    mlf = _minimal_mlf(tmp_path / "model.tar")
    args = (
        "micro",
        "create-project",
        str(tmp_path / "p"),
        str(mlf),
        "template",
        "--template-dir",
        str(template),
    )
    r = tvmc(*args)
    assert r.returncode == 0, r.stderr
    assert "note: microtvm_api_server.py is a v0.18-style server" in r.stderr
    assert (tmp_path / "p" / "options.txt").read_text() == "verbose=False workspace_size_bytes=2097152\n"
    bad = tvmc(*args[:2], str(tmp_path / "q"), *args[3:], "--project-option", "board=read_modules")
    assert bad.returncode == 2
    assert (
        "cannot generate a project from this MLF: it reads metadata.json as v0.18's (`modules`)" in bad.stderr
    )


def test_build_and_flash_accept_template_dir(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(SERVERS / "v018_ported_server.py", project / "microtvm_api_server.py")
    (project / "model.tar").write_bytes(b"")
    for command in ("build", "flash"):
        r = tvmc("micro", command, str(project), "template", "--template-dir", str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert "note: --template-dir is not needed here" in r.stderr
    wrong = tvmc("micro", "build", str(project), "crt_host", "--template-dir", str(tmp_path))
    assert wrong.returncode == 2 and "--template-dir goes with PLATFORM 'template'" in wrong.stderr
    missing = tvmc("micro", "flash", str(project), "template", "--template-dir", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a directory" in missing.stderr


@pytest.mark.slow
def test_run_through_a_server_returning_zero_timeouts(tmp_path: Path, compiled_mlf) -> None:
    project = tmp_path / "project"
    mlf = compiled_mlf("hello_world_float.tflite")
    for args in (
        ("create-project", str(project), str(mlf), "crt_host"),
        ("build", str(project)),
        ("flash", str(project)),
    ):
        r = tvmc("micro", *args)
        assert r.returncode == 0, r.stderr
    # The project's server replaced by a v0.18 one that returns TransportTimeouts(0, 0, 0): "no limit".
    shutil.copy2(SERVERS / "v018_ported_server.py", project / "microtvm_api_server.py")
    r = tvmc("run", "--device", "micro", str(project), "--print-top", "1", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "top 1" in r.stdout
