"""Float kernels keep every multiply and add separately rounded on an FPU target: arm-none-eabi-gcc in its
GNU modes (the cortex_m and zephyr builds use -std=gnu11) contracts a*b+c into VFMA, which changes results
in the last bit against LiteRT/onnxruntime. The generated source switches contraction off itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2", "-std=gnu11"]


def _asm(src: Path, include: Path, out: Path) -> str:
    subprocess.run(
        ["arm-none-eabi-gcc", *ARM_FLAGS, "-I", str(include), "-S", str(src), "-o", str(out)], check=True
    )
    return out.read_text()


def test_float_kernels_have_no_fused_multiply_add(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi)")
    sys.path.insert(0, str(REPO / "scripts"))
    from make_demo_model import make_model
    from tvmc_micro.compiler import compile_model

    make_model(str(tmp_path / "mlp.onnx"))
    compile_model(tmp_path / "mlp.onnx", tmp_path / "m.tar", target="c -mcpu=cortex-m4")
    with tarfile.open(tmp_path / "m.tar") as tar:
        tar.extractall(tmp_path / "mlf", filter="data")
    include = tmp_path / "mlf" / "codegen" / "host" / "include"
    lib = next((tmp_path / "mlf" / "codegen" / "host" / "src").glob("*_lib0.c"))
    kernels = _asm(lib, include, tmp_path / "lib0.s")
    assert "vmul.f32" in kernels, "the dense layers should compile to FPU multiplies"
    assert "vfma" not in kernels and "vfms" not in kernels

    # The same source without the pragmas is contracted by this compiler: the check above is not vacuous.
    text = lib.read_text()
    pragmas = (
        '#pragma GCC optimize("fp-contract=off")',
        "#pragma GCC push_options",
        "#pragma GCC pop_options",
    )
    bare = tmp_path / "bare.c"
    bare.write_text("\n".join(ln for ln in text.splitlines() if ln.strip() not in pragmas) + "\n")
    assert "vfma" in _asm(bare, include, tmp_path / "bare.s")
