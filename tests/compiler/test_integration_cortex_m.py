"""The MLF on a Cortex-M4 as an outside user takes it: a bare-metal program written from the tar's README
alone (tests/compiler/outside_user_m4: main.c, startup.c, board.ld for QEMU's mps2-an386) is built with
the README's own arm-none-eabi-gcc command lines — from the model's sources, from every .c in the tar (an
IDE's way) and from lib<name>.a — run under qemu-system-arm, and prints the outputs `tvmc run` computes
for the same inputs on the crt_host firmware (through the real CLI). The README's C example runs there
too and prints what TFLite Micro computes."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from tvmc_micro.compiler.integration import readme, toolchain_for

from tests.compiler.test_integration import _blocks, _real_zero_expected
from tests.conftest import REPO_ROOT, MlfCache

pytestmark = pytest.mark.slow
MODEL = "kws_ref_model.tflite"
NAME = "kws"  # the outside user's main.c calls tvmgen_kws_*
USER_PROGRAM = Path(__file__).parent / "outside_user_m4"
SAMPLES = 3
QEMU = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "null"]
SEMIHOSTING = ["-semihosting-config", "enable=on,target=native"]


def _require_arm() -> None:
    for tool, package in (("arm-none-eabi-gcc", "gcc-arm-none-eabi"), ("qemu-system-arm", "qemu-system-arm")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install {package}; scripts/setup.sh does)")


@pytest.fixture(scope="module")
def m4_tar(compiled_mlf: MlfCache) -> Path:
    _require_arm()
    return compiled_mlf(MODEL, target="c -mcpu=cortex-m4", emit_library=True, model_name=NAME)


@pytest.fixture(scope="module")
def user_inputs() -> np.ndarray:
    return np.random.default_rng(21).integers(-128, 128, (SAMPLES, 1, 49, 10, 1), dtype=np.int8)


def _tvmc(*args: str, cwd: Path) -> None:
    env = {"PYTHONPATH": f"{REPO_ROOT / 'client'}:{REPO_ROOT / 'project_api'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "tvmc_micro.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"tvmc {' '.join(args)}:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def tvmc_run_outputs(
    m4_tar: Path, user_inputs: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> np.ndarray:
    """`tvmc run` of the same MLF on the crt_host firmware, every sample in one batch: (SAMPLES, 12)."""
    work = tmp_path_factory.mktemp("crt_host")
    np.savez(work / "in.npz", input_1=user_inputs)
    _tvmc("micro", "create-project", "crt", str(m4_tar), "crt_host", cwd=work)
    _tvmc("micro", "build", "crt", cwd=work)
    _tvmc("micro", "flash", "crt", cwd=work)
    _tvmc("run", "--device", "micro", "crt", "-i", "in.npz", "-o", "out.npz", cwd=work)
    with np.load(work / "out.npz") as out:
        return out["Identity"].reshape(SAMPLES, -1)


def _user_project(tar: Path, dest: Path, inputs: np.ndarray) -> tuple[Path, str]:
    """The MLF extracted, the user's program beside it and user_inputs.h with the samples."""
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    for path in USER_PROGRAM.iterdir():
        shutil.copy(path, dest / path.name)
    rows = ",\n".join("  {" + ",".join(str(int(v)) for v in x.ravel()) + "}" for x in inputs)
    (dest / "user_inputs.h").write_text(
        f"#define USER_NUM_INPUTS {len(inputs)}\n"
        f"static const signed char user_inputs[{len(inputs)}][{inputs[0].size}] = {{\n{rows}\n}};\n"
    )
    return dest, (dest / "README.md").read_text()


def _bare_metal_commands(readme_text: str) -> dict[str, str]:
    """The README's firmware link lines: 'sources' and 'library'."""
    found = {}
    for block in _blocks(readme_text, "sh"):
        if "-T board.ld" in block:
            found["library" if "-Llib" in block else "sources"] = block.strip()
    assert set(found) == {"sources", "library"}, readme_text
    return found


def _build_and_boot(mlf: Path, command: str) -> str:
    """Run a README command line (globs expanded as a shell would) and boot app.elf; QEMU's stdout."""
    argv: list[str] = []
    for word in shlex.split(command):
        argv += sorted(str(p) for p in mlf.glob(word)) if "*" in word else [word]
    built = subprocess.run(argv, cwd=mlf, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"{command}\n{built.stderr[-3000:]}"
    assert "warning" not in built.stderr, built.stderr
    ran = subprocess.run(
        [*QEMU, *SEMIHOSTING, "-kernel", "app.elf"], cwd=mlf, capture_output=True, text=True, timeout=120
    )
    (mlf / "app.elf").unlink()
    assert ran.returncode == 0, f"the firmware exited with {ran.returncode}:\n{ran.stdout}\n{ran.stderr}"
    return ran.stdout


def _printed_outputs(stdout: str) -> np.ndarray:
    runs = re.findall(r"^run (\d+) status (-?\d+) outputs (\S+)$", stdout, re.M)
    assert [int(k) for k, _, _ in runs] == list(range(SAMPLES)), stdout
    assert all(status == "0" for _, status, _ in runs), stdout
    return np.array([[int(v) for v in values.split(",")] for _, _, values in runs], np.int8)


@pytest.mark.parametrize("build", ["sources", "every_c", "library"])
def test_outside_user_firmware_on_cortex_m4_equals_tvmc_run(
    build: str, m4_tar: Path, user_inputs: np.ndarray, tvmc_run_outputs: np.ndarray, tmp_path: Path
) -> None:
    mlf, text = _user_project(m4_tar, tmp_path / "mlf", user_inputs)
    commands = _bare_metal_commands(text)
    command = commands["library" if build == "library" else "sources"]
    if build == "every_c":
        # What the README tells an IDE user who compiles every .c of the folder: runtime/include too.
        every_c = " ".join(sorted(str(p.relative_to(mlf)) for p in mlf.rglob("*.c")))
        assert "runtime/src/server.c" in every_c and "-Iruntime/include" in text
        command = command.replace("main.c startup.c codegen/host/src/*.c", every_c)
        command = command.replace("-Icodegen/host/include", "-Icodegen/host/include -Iruntime/include")
        assert "runtime/src/server.c" in command
    np.testing.assert_array_equal(_printed_outputs(_build_and_boot(mlf, command)), tvmc_run_outputs)


def test_readme_c_example_on_cortex_m4_prints_tflite_micro_outputs(m4_tar: Path, tmp_path: Path) -> None:
    """The README's own example (float printing: needs the `-u _printf_float` the README gives) with the
    user's startup code and linker script."""
    mlf, text = _user_project(m4_tar, tmp_path / "mlf", np.zeros((1, 490), np.int8))
    (example,) = _blocks(text, "c")
    (mlf / "main.c").write_text(example)
    printed = _build_and_boot(mlf, _bare_metal_commands(text)["sources"])
    meta = json.loads((mlf / "metadata.json").read_text())["models"][0]
    assert np.float32([float(v) for v in printed.split()]).tolist() == _real_zero_expected(meta)


def test_bare_metal_section_follows_the_core(m4_tar: Path, tmp_path: Path) -> None:
    """Only Cortex-M targets get the firmware link; only hard-float cores the FPU step."""
    with tarfile.open(m4_tar) as t:
        model = json.load(t.extractfile("metadata.json"))["models"][0]  # type: ignore[arg-type]
    m4 = readme(model, toolchain_for({"mcpu": "cortex-m4"}), has_library=True)
    m3 = readme(model, toolchain_for({"mcpu": "cortex-m3"}), has_library=False)
    host = readme(model, toolchain_for({}), has_library=True)
    assert "0xE000ED88" in m4 and "-mfloat-abi=hard -mfpu=fpv4-sp-d16" in m4
    assert "-T board.ld" in m3 and "0xE000ED88" not in m3 and "-mfloat-abi=soft" in m3
    assert "-Llib -lkws -T board.ld" not in m3  # no library in that MLF: no library link line
    assert "board.ld" not in host and "rdimon" not in host
