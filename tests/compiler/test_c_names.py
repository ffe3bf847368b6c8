"""naming.py's identifiers and escapes, the refusals that guard the C interface, the renaming of TIR
variables whose names C cannot take, the executor's arena checks (an overrun inside the one static arena is
reported by ASan only with them), and the device glue's string escapes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tvmc_micro.compiler.naming import (
    MAX_IDENTIFIER,
    c_comment_text,
    c_string_literal,
    claim_unique,
    is_reserved,
    sanitize_c_identifier,
    unique_names,
)

HOSTILE = [
    "a b",
    "x */ y /* z",
    "a??/",
    "b??!",
    '"q"\\',
    "\u00e9\n\t\x00\x7f",
    "int",
    "class",
    "_Bool",
    "__x",
    "_X",
    "9a",
    "NULL",
    "expf",
    "INT32_MAX",
    "int8_t",
    "tvmc_rq",
    "TVMGEN_ALIGNED",
    "",
    "____",
    "x" * 300,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_sanitized_names_are_safe_identifiers(name: str) -> None:
    out = sanitize_c_identifier(name)
    assert out.isascii() and out.replace("_", "a").isalnum() and not out[0].isdigit()
    assert not is_reserved(out) and len(out) <= MAX_IDENTIFIER + 2
    assert "__" not in out and not out.startswith("_") and not out.endswith("_")
    assert sanitize_c_identifier(name) == out  # deterministic


def test_sanitize_examples() -> None:
    assert sanitize_c_identifier("serving_default_input_1:0") == "serving_default_input_1_0"
    assert sanitize_c_identifier("int") == "v_int"
    assert sanitize_c_identifier("_Bool") == "Bool"
    assert sanitize_c_identifier("TVMGEN_ALIGNED") == "v_TVMGEN_ALIGNED"
    assert sanitize_c_identifier("a__b") == "a_b"
    assert sanitize_c_identifier("", fallback="t3") == "t3"


def test_unique_names_ignore_case_and_keep_clear_of_the_size_macros() -> None:
    # TVMGEN_<MODEL>_<NAME>_SIZE: `a` and `A` collide, and `workspace` would redefine the arena size.
    assert unique_names(["a", "A", "workspace", "State", "a/1", "a_1"]) == [
        "a",
        "A_1",
        "workspace_1",
        "State_1",
        "a_1_1",  # A_1 is taken, in any case
        "a_1_2",
    ]
    shared: set[str] = set()
    assert unique_names(["x"], shared) + unique_names(["X"], shared) == ["x", "X_1"]
    used = {"v_int"}
    assert claim_unique("int", used) == "v_int_1" and "v_int_1" in used


def test_literals_and_comments_escape_everything_dangerous() -> None:
    assert c_string_literal('a??/"\\\n\u00e9*/') == '"a\\?\\?/\\"\\\\\\012\\303\\251\\052/"'
    text = c_comment_text("x */ y /* z ??/")
    assert "*/" not in text and "/*" not in text and "??" not in text
    # Octal escapes always take three digits, so a following digit is not swallowed.
    assert c_string_literal("\x01" + "7") == '"\\0017"'


def _compile_c(tmp: Path, source: str, *flags: str) -> subprocess.CompletedProcess[str]:
    src = tmp / "t.c"
    src.write_text(source)
    return subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wtrigraphs",
            *flags,
            str(src),
            "-o",
            str(tmp / "t"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_escaped_literal_compiles_to_the_exact_bytes(tmp_path: Path) -> None:
    names = [n for n in HOSTILE if "\x00" not in n]
    rows = ",\n".join(f"  {c_string_literal(n)} /* {c_comment_text(n)} */" for n in names)
    source = (
        "#include <stdio.h>\n"
        f"static const char* const names[] = {{\n{rows}\n}};\n"
        "int main(void) {\n"
        f"  for (int i = 0; i < {len(names)}; ++i) {{ fputs(names[i], stdout); putchar(0); }}\n"
        "  return 0;\n}\n"
    )
    proc = _compile_c(tmp_path, source)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [n.encode() for n in names]


def test_c_interface_refuses_unsafe_or_colliding_names() -> None:
    from tvmc_micro.compiler.c_emit import IoName, check_identifiers
    from tvmc_micro.compiler.errors import LoweringError
    from tvmc_micro.compiler.executor import Tensor

    def io(c_name: str) -> IoName:
        return IoName(Tensor(0, (1,), "float32", "input", c_name), c_name, c_name)

    check_identifiers("m", [io("a")], [io("b")])
    with pytest.raises(LoweringError, match="not safe C identifiers"):
        check_identifiers("m", [io("a b")], [])
    with pytest.raises(LoweringError, match="not safe C identifiers"):
        check_identifiers("int", [], [])
    with pytest.raises(LoweringError, match=r"colliding size macros \['X'\]"):
        check_identifiers("m", [io("x")], [io("X")])
    with pytest.raises(LoweringError, match=r"colliding size macros \['WORKSPACE'\]"):
        check_identifiers("m", [io("workspace")], [])


def test_tir_variables_get_safe_names() -> None:
    pytest.importorskip("tvm")
    from tvm import tirx
    from tvmc_micro.compiler.tir_codegen import _safe_var_names

    a = tirx.decl_buffer((4,), "float32", name="a b")
    b = tirx.decl_buffer((4,), "float32", name="expf")
    c = tirx.decl_buffer((4,), "float32", name="v_expf")  # the name `expf` would become: taken
    i = tirx.Var("int", "int32")
    body = tirx.For(i, 0, 4, tirx.ForKind.SERIAL, tirx.BufferStore(c, a[i] + b[i], [i]))
    func = tirx.PrimFunc([a, b, c], body)
    out = _safe_var_names(func)
    assert [str(p.name) for p in out.params] == ["a_b", "v_expf_1", "v_expf"]
    assert "v_int" in str(out.body) and "a b" not in str(out.body)
    clean = tirx.PrimFunc([c], tirx.Evaluate(0))
    assert _safe_var_names(clean).same_as(clean)  # nothing to rename: the same object


# --- arena checks ---------------------------------------------------------------------------------------


def _executor_program(
    overrun: bool, funcs: tuple[str, str, str] = ("k0", "k1", "k2")
) -> tuple[str, str, str]:
    """An executor of x -> k0 -> a -> k1 -> b -> k2 -> y over a 32-byte arena (a at 0, b at 16), from
    c_emit itself; k0 writes one float past `a` into `b` when `overrun`. `funcs`: the kernels' PrimFunc
    names, given C symbols as the driver gives them (naming.kernel_symbols)."""
    from tvmc_micro.compiler import c_emit
    from tvmc_micro.compiler.executor import ExecutorGraph, KernelCall, Tensor
    from tvmc_micro.compiler.naming import kernel_symbols
    from tvmc_micro.compiler.planner import ArenaPlan
    from tvmc_micro.compiler.tir_codegen import LoweredKernel

    symbols = kernel_symbols("m", list(funcs))

    g = ExecutorGraph(tensors=[], calls=[], inputs=[0], outputs=[3])
    g.tensors = [
        Tensor(0, (4,), "float32", "input", "x", io_index=0),
        Tensor(1, (4,), "float32", "intermediate", "a"),
        Tensor(2, (4,), "float32", "intermediate", "b"),
        Tensor(3, (4,), "float32", "output", "y", io_index=0),
    ]
    g.calls = [KernelCall(f, [i, i + 1], [i + 1]) for i, f in enumerate(funcs)]
    plan = ArenaPlan(offsets={1: 0, 2: 16}, size=32, groups={})
    ins = [c_emit.IoName(g.tensors[0], "x", "x")]
    outs = [c_emit.IoName(g.tensors[3], "y", "y")]
    steps = []
    for call in g.calls:
        kernel = LoweredKernel(symbols[call.func], ["float32", "float32"], [])
        args = [c_emit.tensor_expr("m", g.tensors[t], plan, ins, outs) for t in call.args]
        steps.append(c_emit.KernelStep(kernel.symbol, kernel, args))
    n = 5 if overrun else 4
    kernels = "#include <stdint.h>\n" + "".join(
        f"int32_t {symbols[funcs[k]]}(float* in, float* out) {{\n"
        f"  for (int i = 0; i < {n if k == 0 else 4}; ++i) out[i] = in[i % 4] + 1.0f;\n  return 0;\n}}\n"
        for k in range(3)
    )
    main = (
        '#include <stdio.h>\n#include "tvmgen_m.h"\n'
        "int main(void) {\n  float x[4] = {1, 2, 3, 4}, y[4];\n"
        "  struct tvmgen_m_inputs in = {x};\n  struct tvmgen_m_outputs out = {y};\n"
        "  if (tvmgen_m_run(&in, &out) != 0) return 1;\n"
        '  printf("%g %g %g %g\\n", y[0], y[1], y[2], y[3]);\n  return 0;\n}\n'
    )
    header = c_emit.header("m", plan.size, ins, outs)
    return header, c_emit.executor("m", g, plan, steps, ins, outs) + kernels, main


@pytest.mark.parametrize("overrun", [False, True])
@pytest.mark.parametrize("checks", [False, True])
def test_arena_checks_make_asan_see_an_overrun_inside_the_arena(
    tmp_path: Path, overrun: bool, checks: bool
) -> None:
    from compiler_harness import SANITIZE_CFLAGS

    header, executor, main = _executor_program(overrun)
    (tmp_path / "tvmgen_m.h").write_text(header)
    (tmp_path / "executor.c").write_text(executor)
    flags = [f for f in SANITIZE_CFLAGS if checks or f != "-DTVMGEN_ARENA_CHECKS"]
    proc = subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Werror", *flags, f"-I{tmp_path}", str(tmp_path / "executor.c"),
         "-x", "c", "-", "-o", str(tmp_path / "t")],
        input=main, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=False)
    if overrun and checks:
        assert run.returncode != 0 and "use-after-poison" in run.stderr, run.stderr
    else:
        # Without the checks the overrun stays inside the one array: ASan cannot see it.
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["4", "5", "6", "7"]


def test_arena_checks_cost_nothing_without_the_macro(tmp_path: Path) -> None:
    header, executor, _ = _executor_program(False)
    assert len(re.findall(r"TVMGEN_ARENA_OPEN\(\d+", executor)) == 4  # k0: a; k1: a, b; k2: b
    (tmp_path / "tvmgen_m.h").write_text(header)
    (tmp_path / "e.c").write_text(executor)
    pre = subprocess.run(
        ["gcc", "-E", "-P", f"-I{tmp_path}", str(tmp_path / "e.c")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    run_body = pre[pre.index("tvmgen_m_run(") :]
    assert "memset" not in run_body and "asan" not in run_body


# --- device glue --------------------------------------------------------------------------------------


def test_device_glue_escapes_trigraphs_and_comment_text(tmp_path: Path) -> None:
    pytest.importorskip("microtvm_api")
    from microtvm_api.model_glue import render_model_glue
    from tvmc_micro.device.reference_model import write_tiny_mlf

    mlf = write_tiny_mlf(tmp_path / "mlf", n=4)
    meta = json.loads((mlf / "metadata.json").read_text())
    model = meta["models"][0]
    model["inputs"][0]["name"] = "in??/ */"
    model["operators"] = [{"index": 0, "name": "op??! /* \u00e9", "function": "f"}]
    (mlf / "metadata.json").write_text(json.dumps(meta))
    text = render_model_glue(mlf / "metadata.json")
    assert "??" not in text and "in??/ */" not in text
    assert c_string_literal("in??/ */") in text and c_string_literal("op??! /* \u00e9") in text
    assert np.all([ord(ch) < 128 for ch in text])


def test_kernels_never_take_an_executor_symbol() -> None:
    """tvmgen_<model>_run, _input_ptr, ... are the executor's: a PrimFunc with such a name gets another."""
    from tvmc_micro.compiler.naming import EXECUTOR_SUFFIXES, kernel_symbols

    funcs = [*sorted(EXECUTOR_SUFFIXES), "RUN", "add"]
    symbols = kernel_symbols("m", funcs)
    assert symbols["run"] == "tvmgen_m_run_1" and symbols["input_ptr"] == "tvmgen_m_input_ptr_1"
    assert symbols["RUN"] == "tvmgen_m_RUN_2" and symbols["add"] == "tvmgen_m_add"
    assert len(set(symbols.values())) == len(funcs)
    assert not {s.removeprefix("tvmgen_m_") for s in symbols.values()} & EXECUTOR_SUFFIXES


def test_a_kernel_called_run_compiles_beside_the_executor(tmp_path: Path) -> None:
    """The executor's own symbols (from c_emit) are all reserved, and a program whose kernels are called
    `run`, `arena` and `input_ptr` compiles and runs (before: tvmgen_m_run was defined twice)."""
    from tvmc_micro.compiler.naming import EXECUTOR_SUFFIXES

    header, source, main = _executor_program(False, ("run", "arena", "input_ptr"))
    kernels = {"run_1", "arena_1", "input_ptr_1"}
    defined = set(re.findall(r"tvmgen_m_(\w+)", header + source)) - kernels - {"inputs", "outputs"}
    assert defined <= EXECUTOR_SUFFIXES, defined - EXECUTOR_SUFFIXES
    for name, text in (("tvmgen_m.h", header), ("executor.c", source), ("main.c", main)):
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Werror", f"-I{tmp_path}", str(tmp_path / "executor.c"),
         str(tmp_path / "main.c"), "-o", str(tmp_path / "t")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ran = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True)
    assert ran.stdout.split() == ["4", "5", "6", "7"]
