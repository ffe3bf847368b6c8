"""Builds and runs the C runtime's unit tests (runtime/src/*_test.c) with the real compilers.

Each test program replays the vectors of docs/wire-protocol.md; they are compiled with the strict flags
the runtime promises (-std=c99 -Wall -Wextra -Werror -pedantic) and with ASan/UBSan, so an out-of-bounds
access fails the test even when the output happens to be right.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tvmc_micro.device.reference_model import build_host_firmware, write_tiny_mlf

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtime"
DOC = REPO / "docs" / "wire-protocol.md"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE = ["-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
SUPPORT = [RUNTIME / "test" / "testutil.c", RUNTIME / "test" / "fake_platform.c"]

# Each unit test with the modules it needs (the module under test first).
UNIT_TESTS = {
    "crc16_test": ["crc16.c"],
    "frame_test": ["frame.c", "crc16.c"],
    "profiler_test": ["profiler.c", "platform_log_default.c"],
    "server_test": ["server.c", "frame.c", "crc16.c", "profiler.c", "platform_log_default.c"],
}


def _compile(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}\n{result.stderr}"


def test_every_module_has_a_unit_test() -> None:
    modules = {p.stem for p in (RUNTIME / "src").glob("*.c") if not p.stem.endswith("_test")}
    tested = {name.removesuffix("_test") for name in UNIT_TESTS}
    # The weak default of an optional platform hook has no behaviour to test beyond linking (profiler_test).
    assert modules - {"platform_log_default"} == tested
    for name in UNIT_TESTS:
        assert (RUNTIME / "src" / f"{name}.c").is_file()


@pytest.mark.parametrize("name", sorted(UNIT_TESTS))
def test_c_unit_test(name: str, tmp_path: Path) -> None:
    exe = tmp_path / name
    sources = [RUNTIME / "src" / f"{name}.c"] + [RUNTIME / "src" / m for m in UNIT_TESTS[name]] + SUPPORT
    _compile(["gcc", *STRICT, *SANITIZE, f"-I{RUNTIME / 'include'}", *map(str, sources), "-o", str(exe)])
    result = subprocess.run([str(exe), str(DOC)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


def test_c_unit_test_fails_on_a_wrong_vector(tmp_path: Path) -> None:
    """The C replay really compares: one altered byte in a copy of the doc makes it fail."""
    doc = tmp_path / "wire-protocol.md"
    text = DOC.read_text()
    assert "< 87 01 00 00 01 03 FF 01" in text
    doc.write_text(text.replace("< 87 01 00 00 01 03 FF 01", "< 87 01 00 00 01 03 FF 02", 1))
    exe = tmp_path / "server_test"
    sources = [RUNTIME / "src" / "server_test.c"] + [RUNTIME / "src" / m for m in UNIT_TESTS["server_test"]]
    _compile(["gcc", *STRICT, f"-I{RUNTIME / 'include'}", *map(str, sources + SUPPORT), "-o", str(exe)])
    result = subprocess.run([str(exe), str(doc)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "vector inference: reply #0" in result.stderr


def _portable_sources() -> list[Path]:
    return sorted(p for p in (RUNTIME / "src").glob("*.c") if not p.stem.endswith("_test"))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
def test_runtime_and_glue_compile_for_cortex_m4(tmp_path: Path) -> None:
    """The portable runtime and a generated glue build warning-free for a Cortex-M4 at -Os."""
    mlf = write_tiny_mlf(tmp_path / "mlf", n=16)
    from microtvm_api.model_glue import write_model_glue

    glue = write_model_glue(mlf / "metadata.json", tmp_path / "glue.c")
    for source in [*_portable_sources(), glue]:
        _compile(["arm-none-eabi-gcc", *STRICT, "-mcpu=cortex-m4", "-mthumb", "-Os", "-DTVMGEN_PROFILE",
                  f"-I{RUNTIME / 'include'}", f"-I{mlf / 'codegen' / 'host' / 'include'}", "-c", str(source),
                  "-o", str(tmp_path / (source.stem + ".o"))])


def test_host_port_and_crt_host_main_are_strict_c99(tmp_path: Path) -> None:
    """The host platform and the crt_host main loop compile under the same strict flags, and link."""
    mlf = write_tiny_mlf(tmp_path / "mlf", n=4)
    exe = build_host_firmware(mlf, tmp_path / "fw", extra_flags=("-Werror", "-pedantic"))
    assert exe.is_file()
