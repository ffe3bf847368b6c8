"""The MLF as an embedded developer takes it, with no RPC: the tar's README alone is enough to build and
run the model (its own command lines and C example, verbatim, from every source and from lib<name>.a), the
CMake and Make fragments build it, and the host shared library answers through ctypes — all with outputs
equal to the reference interpreter's."""

from __future__ import annotations

import ctypes
import glob
import json
import re
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from tvmc_micro.compiler import compile_model
from tvmc_micro.compiler.errors import CompileOptionError
from tvmc_micro.compiler.integration import Toolchain, build_static_library

from tests.conftest import MlfCache, model_path

pytestmark = pytest.mark.slow
MODEL = "kws_ref_model.tflite"  # int8 in and out: exact against TFLite Micro


def _extract(tar: Path, dest: Path) -> Path:
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest


def _blocks(readme: str, lang: str) -> list[str]:
    return [m.group(1) for m in re.finditer(rf"```{lang}\n(.*?)```", readme, re.S)]


def _reference(inputs: list[np.ndarray]) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model_path(MODEL).read_bytes(), arena_size=16 << 20)
    for i, a in enumerate(inputs):
        interp.set_input(a, i)
    interp.invoke()
    return [np.array(interp.get_output(0))]


def _build_and_run(mlf_dir: Path, command: str) -> list[float]:
    argv: list[str] = []
    for word in shlex.split(command):
        argv += sorted(glob.glob(word, root_dir=mlf_dir)) if "*" in word else [word]
    subprocess.run(argv, cwd=mlf_dir, check=True, timeout=300)
    out = subprocess.run([str(mlf_dir / "app")], capture_output=True, text=True, check=True, timeout=60)
    (mlf_dir / "app").unlink()
    return [float(v) for v in out.stdout.split()]


def _real_zero_expected(meta: dict[str, object]) -> list[float]:
    """What the README's example prints: the first output, dequantised in float32, for every input set to
    the real value 0 (quantised: the zero point)."""
    ins, outs = meta["inputs"], meta["outputs"]
    assert isinstance(ins, list) and isinstance(outs, list)
    zero = [np.full(i["shape"], (i["quantization"] or {}).get("zero_point", 0), i["dtype"]) for i in ins]
    out, q = _reference(zero)[0].ravel(), outs[0]["quantization"]
    real = (out.astype(np.int32) - q["zero_point"]).astype(np.float32) * np.float32(q["scale"])
    return real.astype(np.float32).tolist()


def test_readme_alone_builds_and_runs_the_model(compiled_mlf: MlfCache, tmp_path: Path) -> None:
    mlf = _extract(compiled_mlf(MODEL, emit_library=True), tmp_path / "mlf")
    readme = (mlf / "README.md").read_text()
    (c_example,) = _blocks(readme, "c")
    (mlf / "main.c").write_text(c_example)  # the README's example, verbatim: it runs on a zero input
    from_sources, from_library = _blocks(readme, "sh")
    meta = json.loads((mlf / "metadata.json").read_text())["models"][0]
    expected = _real_zero_expected(meta)
    # The example prints "%.9g" of float32 values: exact once read back as float32.
    assert np.float32(_build_and_run(mlf, from_sources)).tolist() == expected
    assert np.float32(_build_and_run(mlf, from_library)).tolist() == expected
    assert "_PTR" in c_example and "_SCALE" in c_example and "_ZERO_POINT" in c_example
    # The quantisation the README states is the model's.
    q = meta["inputs"][0]["quantization"]
    assert f"scale {q['scale']}, zero point {q['zero_point']}" in readme


def test_make_and_cmake_fragments_build_the_model(compiled_mlf: MlfCache, tmp_path: Path) -> None:
    mlf = _extract(compiled_mlf(MODEL, emit_library=True), tmp_path / "mlf")
    meta = json.loads((mlf / "metadata.json").read_text())["models"][0]
    name, up = meta["name"], meta["name"].upper()
    (c_example,) = _blocks((mlf / "README.md").read_text(), "c")
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.c").write_text(c_example)
    (app / "Makefile").write_text(
        f"include {mlf}/tvmgen_{name}.mk\napp: main.c $(TVMGEN_{up}_SOURCES)\n"
        f"\t$(CC) -std=c99 -O2 $(TVMGEN_{up}_CFLAGS) -o $@ $^ -lm\n"
    )
    subprocess.run(["make", "-s"], cwd=app, check=True, timeout=300)
    make_out = subprocess.run([str(app / "app")], capture_output=True, text=True, check=True).stdout
    if not any(Path(p, "cmake").is_file() for p in ("/usr/bin", "/usr/local/bin")):
        pytest.skip("cmake is not installed; the Make fragment was checked")
    (app / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(app C)\n"
        f"include({mlf}/tvmgen_{name}.cmake)\nadd_executable(app2 main.c ${{TVMGEN_{up}_SOURCES}})\n"
        f"target_include_directories(app2 PRIVATE ${{TVMGEN_{up}_INCLUDE_DIRS}})\n"
        "target_link_libraries(app2 PRIVATE m)\n"
    )
    subprocess.run(
        ["cmake", "-S", ".", "-B", "b", "-DCMAKE_BUILD_TYPE=Release"],
        cwd=app,
        check=True,
        capture_output=True,
        timeout=300,
    )
    subprocess.run(["cmake", "--build", "b"], cwd=app, check=True, capture_output=True, timeout=300)
    assert subprocess.run([str(app / "b" / "app2")], capture_output=True, text=True).stdout == make_out


def test_shared_library_through_ctypes(tmp_path: Path) -> None:
    so = tmp_path / "kws.so"
    compile_model(model_path(MODEL), so, output_format="so", model_name="kws")
    lib = ctypes.CDLL(str(so))
    lib.tvmgen_kws_metadata_json.restype = ctypes.c_char_p
    meta = json.loads(lib.tvmgen_kws_metadata_json())["models"][0]
    (inp,), (outp,) = meta["inputs"], meta["outputs"]
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.integers(-128, 128, inp["shape"], dtype=np.int8)
        y = np.zeros(outp["shape"], np.int8)

        class Io(ctypes.Structure):
            _fields_ = [("p", ctypes.c_void_p)]

        rc = lib.tvmgen_kws_run(ctypes.byref(Io(x.ctypes.data)), ctypes.byref(Io(y.ctypes.data)))
        assert rc == 0
        np.testing.assert_array_equal(y, _reference([x])[0].reshape(y.shape))


def test_missing_cross_compiler_is_a_clear_error(tmp_path: Path) -> None:
    toolchain = Toolchain("arm-none-eabi-gcc-not-installed", (), "ar", "apt-get install gcc-arm-none-eabi")
    files = {"codegen/host/src/m.c": b"int m(void) { return 0; }\n"}
    with pytest.raises(CompileOptionError, match="not found") as info:
        build_static_library(files, "m", toolchain)
    assert "apt-get install" in (info.value.hint or "")


def test_library_compile_error_names_the_command(tmp_path: Path) -> None:
    files = {"codegen/host/src/m.c": b"this is not C\n"}
    with pytest.raises(
        CompileOptionError, match=r"building the model library failed: cc .* -c codegen/host/src/m.c"
    ):
        build_static_library(files, "m", Toolchain("cc", (), "ar", "install gcc"))


def test_unknown_output_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CompileOptionError, match="output format 'elf'"):
        compile_model(model_path("hello_world_float.tflite"), tmp_path / "x", output_format="elf")


def test_every_c_file_of_the_tar_builds_as_an_ide_would(compiled_mlf: MlfCache, tmp_path: Path) -> None:
    # STM32CubeIDE, Keil and MCUXpresso compile every .c of a dropped-in folder: that must work for the
    # host (and link with a main) and compile cleanly for the Cortex-M target.
    mlf = _extract(compiled_mlf(MODEL, target="c -mcpu=cortex-m4"), tmp_path / "mlf")
    (c_example,) = _blocks((mlf / "README.md").read_text(), "c")
    (mlf / "main.c").write_text(c_example)
    every_c = sorted(str(p.relative_to(mlf)) for p in mlf.rglob("*.c"))
    includes = ["-Icodegen/host/include", "-Iruntime/include"]
    flags = ["-std=c99", "-O1", "-Wall", "-Werror", "-Wno-unused-function"]
    subprocess.run(["cc", *flags, *includes, *every_c, "-lm", "-o", "app"], cwd=mlf, check=True, timeout=300)
    # and that program runs the model: the README example's outputs, as TFLite Micro computes them
    ran = subprocess.run([str(mlf / "app")], capture_output=True, text=True, check=True, timeout=60)
    meta = json.loads((mlf / "metadata.json").read_text())["models"][0]
    assert np.float32([float(v) for v in ran.stdout.split()]).tolist() == _real_zero_expected(meta)
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip(
            "arm-none-eabi-gcc is not installed (scripts/setup.sh installs it as root); host part passed"
        )
    arm = ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
    for source in every_c:
        subprocess.run(
            [*arm, *flags, *includes, "-c", source, "-o", "/dev/null"], cwd=mlf, check=True, timeout=300
        )
