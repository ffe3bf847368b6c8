"""The MLF itself: layout, metadata contract, header, no TVM runtime calls, Cortex-M objects."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile

import pytest
from compiler_harness import arm_objects


@pytest.mark.slow
def test_mlf_layout_and_metadata(compiled) -> None:
    tar_path = compiled.tar("kws_qdq_m4")
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
        assert all(not n.startswith(("/", "./")) and ".." not in n.split("/") for n in names)
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())
    for required in (
        "metadata.json",
        "codegen/host/include/tvmgen_kws.h",
        "codegen/host/src/tvmgen_kws_executor.c",
        "codegen/host/src/tvmgen_kws_constants.c",
        "parameters/kws.params.npz",
        "src/kws.relax",
    ):
        assert required in names
    d = compiled.mlf_dir("kws_qdq_m4")
    meta = compiled.built("kws_qdq_m4").metadata
    m = meta["models"][0]
    assert meta["mlf_version"] == 1 and meta["tool"]["name"] == "tvmc-micro"
    assert m["target"] == {"kind": "c", "mcpu": "cortex-m4", "keys": ["arm_cpu", "cpu"]}
    assert m["target_str"] == "c -mcpu=cortex-m4" and m["executor"] == "aot"
    assert re.fullmatch(r"[0-9a-f]{16}", m["signature"])
    assert m["memory"]["activation_lower_bound_bytes"] == 16000
    assert m["inputs"][0]["shape"] == [1, 49, 10, 1] and m["inputs"][0]["dtype"] == "int8"
    assert m["inputs"][0]["quantization"]["zero_point"] == 83
    assert m["outputs"][0]["size_bytes"] == 12
    assert [op["index"] for op in m["operators"]] == list(range(len(m["operators"])))
    header = (d / "codegen/host/include/tvmgen_kws.h").read_text()
    assert f"#define TVMGEN_KWS_WORKSPACE_SIZE {m['memory']['arena_bytes']}\n" in header
    assert "#define TVMGEN_KWS_INPUT_1_SIZE 490" in header
    assert (
        "int32_t tvmgen_kws_run(struct tvmgen_kws_inputs* inputs, struct tvmgen_kws_outputs* outputs);"
        in header
    )
    sources = "".join(p.read_text() for p in (d / "codegen/host/src").glob("*.c"))
    # No packed API, no runtime workspace allocation, no heap, no assert strings.
    for forbidden in ("TVMBackendAllocWorkspace", "TVMFFI", "malloc", "__tvm_ffi", "TVMAPISetLastError"):
        assert forbidden not in sources
    # Every operator function is called, in metadata order, between the profiling hooks.
    executor = (d / "codegen/host/src/tvmgen_kws_executor.c").read_text()
    calls = re.findall(r"if \((tvmgen_kws_\w+)\(", executor)
    assert calls == [op["function"] for op in m["operators"]]
    assert f"TVMGEN_OP_HOOK({len(calls)});" in executor
    # Weights are const (flash).
    assert re.search(
        r"^const float tvmgen_kws_const0\[", (d / "codegen/host/src/tvmgen_kws_constants.c").read_text(), re.M
    )


@pytest.mark.slow
def test_profiling_hook_is_called_in_order(compiled, tmp_path) -> None:
    d = compiled.mlf_dir("hello_float_tflite")
    meta = compiled.built("hello_float_tflite").model
    n = len(meta["operators"])
    hook = tmp_path / "hook.c"
    hook.write_text(
        "#include <stdio.h>\n#include <stdint.h>\n"
        'void tvmgen_op_hook(uint32_t index) { printf("%u ", (unsigned)index); }\n'
    )
    main = tmp_path / "main.c"
    name = meta["name"]
    main.write_text(
        f'#include "tvmgen_{name}.h"\nstatic float i0[1], o0[1];\n'
        f"int main(void) {{ struct tvmgen_{name}_inputs in = {{ i0 }};\n"
        f"  struct tvmgen_{name}_outputs out = {{ o0 }};\n"
        f"  return tvmgen_{name}_run(&in, &out); }}\n"
    )
    exe = tmp_path / "prof"
    srcs = [str(p) for p in (d / "codegen/host/src").glob("*.c")]
    subprocess.run(
        [
            "gcc",
            "-DTVMGEN_PROFILE",
            "-I",
            str(d / "codegen/host/include"),
            str(main),
            str(hook),
            *srcs,
            "-o",
            str(exe),
            "-lm",
        ],
        check=True,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert out.split() == [str(i) for i in range(n + 1)]


@pytest.mark.slow
def test_cortex_m4_objects_build(compiled) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi")
    objs = arm_objects(compiled.mlf_dir("kws_qdq_m4"), "cortex-m4")
    assert len(objs) == 3
    info = subprocess.run(["arm-none-eabi-size", *map(str, objs)], check=True, capture_output=True, text=True)
    assert "tvmgen_kws_lib0.o" in info.stdout
