"""Builds and runs the unit tests of the DSP kernel templates (client/tvmc_micro/compiler/quantized/csrc/
*_test.c): each instantiates its family's template for several shapes and requantisation modes and compares
every output with a plain-C reference loop (TFLite's arithmetic), bit for bit, on the host (the portable
twins of the DSP intrinsics) under ASan/UBSan. Each is also compiled for a Cortex-M4, where the intrinsics
branch is taken, warning-free."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CSRC = REPO / "client" / "tvmc_micro" / "compiler" / "quantized" / "csrc"
STRICT = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
SANITIZE = ["-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
FAMILIES = ["conv", "depthwise", "fully_connected", "add", "avg_pool"]


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=120)


def test_every_template_has_a_unit_test() -> None:
    templates = {p.stem for p in CSRC.glob("*.h")} - {"tvmc_dsp", "kernel_test"}
    assert templates == set(FAMILIES)
    for family in FAMILIES:
        assert (CSRC / f"{family}_test.c").is_file()


@pytest.mark.parametrize("family", FAMILIES)
def test_template_unit_test_on_host(family: str, tmp_path: Path) -> None:
    exe = tmp_path / family
    built = _run(["gcc", *STRICT, *SANITIZE, f"-I{CSRC}", str(CSRC / f"{family}_test.c"), "-o", str(exe)])
    assert built.returncode == 0, built.stderr
    result = _run([str(exe)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("family", FAMILIES)
def test_template_compiles_for_cortex_m4(family: str, tmp_path: Path) -> None:
    argv = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
    source = CSRC / f"{family}_test.c"
    built = _run([*argv, *STRICT, f"-I{CSRC}", "-c", str(source), "-o", str(tmp_path / "t.o")])
    assert built.returncode == 0, built.stderr


def test_a_wrong_kernel_fails_its_unit_test(tmp_path: Path) -> None:
    """The C tests really compare: a conv whose SMLAD drops its second product fails."""
    copy = tmp_path / "csrc"
    shutil.copytree(CSRC, copy)
    header = copy / "tvmc_dsp.h"
    text = header.read_text()
    needle = "(uint32_t)(tvmc_hi16(a) * tvmc_hi16(b)));"
    assert needle in text
    header.write_text(text.replace(needle, "0u);", 1))
    exe = tmp_path / "conv"
    built = _run(["gcc", *STRICT, str(copy / "conv_test.c"), "-o", str(exe)])
    assert built.returncode == 0, built.stderr
    result = _run([str(exe)])
    assert result.returncode == 1 and " 0 failures" not in result.stdout
