"""A wheel built from the repository is a working tool on its own: built from the tracked files only,
installed into a fresh virtual environment, run from outside any checkout, it compiles a model, creates,
builds and flashes a crt_host project from its packaged template and runs it with --validate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _tracked_copy(dest: Path) -> Path:
    """The repository's tracked files only (what a fresh clone has), so nothing generated leaks in."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot tell tracked files from build products")
    listed = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for rel in filter(None, (name.decode() for name in listed)):
        source = REPO_ROOT / rel
        if source.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = _tracked_copy(tmp_path_factory.mktemp("src"))
    dist = tmp_path_factory.mktemp("dist")
    # Built as a user would (`pip wheel .`): pip fetches the build backend pyproject.toml names.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), "."],
        cwd=src,
        check=True,
        timeout=300,
    )
    (built,) = dist.glob("tvmc_micro-*.whl")
    return built


def test_wheel_carries_templates_and_runtime(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "tvmc_micro/_resources/runtime/src/server.c",
        "tvmc_micro/_resources/runtime/include/tvmrt/platform.h",
        "tvmc_micro/_resources/template_projects/crt_host/microtvm_api_server.py",
        "tvmc_micro/_resources/template_projects/cortex_m/boards.yaml",
        "tvmc_micro/_resources/template_projects/zephyr/microtvm_api_server.py",
        "tvmc_micro/compiler/quantized/csrc/tvmc_dsp.h",
        "tvmc_micro/compiler/quantized/csrc/conv.h",
        "tvmc_micro/compiler/quantized/csrc/conv_block.inc",
        "microtvm_api/py.typed",
        "tvmc_micro/py.typed",
    ):
        assert needed in names, f"{needed} missing from {wheel.name}"
    assert not [n for n in names if "__pycache__" in n or n.endswith((".o", ".pyc"))]


def test_wheel_in_fresh_venv_runs_the_main_job(wheel: Path, tmp_path: Path) -> None:
    # The venv sees this interpreter's packages (apache-tvm, the reference interpreters: installing them
    # again would download hundreds of MB) but its own site-packages come first, so `tvmc_micro` and
    # `microtvm_api` are the wheel's, not the checkout's editable install (checked below).
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120
    )
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    work = tmp_path / "work"  # outside the checkout: nothing of the repository is reachable from here
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(list(argv), cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{' '.join(argv)} failed:\n{r.stdout}\n{r.stderr}"
        return r

    where = run(
        str(py), "-c", "import tvmc_micro, microtvm_api; print(tvmc_micro.__file__, microtvm_api.__file__)"
    )
    assert all(Path(p).is_relative_to(venv) for p in where.stdout.split()), where.stdout
    run(str(py), str(REPO_ROOT / "scripts" / "make_demo_model.py"), str(work / "mlp.onnx"))
    tvmc = str(venv / "bin" / "tvmc")
    run(tvmc, "compile", "mlp.onnx", "-o", "mlp.tar")
    listed = run("tar", "tf", "mlp.tar").stdout.split()
    assert "runtime/src/server.c" in listed and not [n for n in listed if n.endswith("_test.c")]
    run(tvmc, "micro", "create-project", "proj", "mlp.tar", "crt_host")
    run(tvmc, "micro", "build", "proj")
    run(tvmc, "micro", "flash", "proj")
    r = run(
        str(py),
        "-m",
        "tvmc_micro",
        "run",
        "--device",
        "micro",
        "proj",
        "--fill-mode",
        "random",
        "--validate",
        "mlp.onnx",
    )
    assert "PASS" in r.stdout + r.stderr
