"""Inputs and outputs inside the arena (issues 18/19), the arena from outside and the header's I/O macros
(issue 14).

- Every int8 shared model, compiled for the host with its inputs and outputs in the arena, needs no more
  arena than the activation lower bound (which counts inputs and outputs: what TFLite Micro's planner
  reaches), and no I/O bytes outside it.
- The three ways to call a model give the same bytes, equal to TFLite Micro's: zero copy (write at
  `input_ptr`, `run(NULL, NULL)`, read at `output_ptr`), the struct with buffers of one's own (copied in
  and out), the struct pointing at the arena slots; and `--io-buffers separate` gives the same again.
  Built with -Wall -Wextra -Werror -std=c99, and once under ASan/UBSan with the executor's arena checks
  (the arena poisoned but for the running kernel's tensors: the I/O slots stay usable between runs).
- `-DTVMGEN_<M>_EXTERNAL_ARENA`: runs on the user's buffer with the same outputs; a NULL, misaligned or
  too small buffer is refused with its code, and a run before `set_arena` returns -2.
- The header's `_SIZE/_TYPE/_DTYPE/_DIMS/_SHAPE/_ELEMENTS/_SCALE/_ZERO_POINT/_OFFSET/_PTR` agree with
  metadata.json (the scale exactly, read back from C with %a).
- The planner's search over placement orders reaches the live peak where largest-first fragments.
- Error paths: a bad --io-buffers value, metadata that puts I/O in the arena without offsets, a header
  whose offsets disagree with metadata.json (the device glue does not build).
"""

from __future__ import annotations

import json
import random
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from compiler_harness import build, extract

from tests.conftest import MlfCache, model_path

pytestmark = pytest.mark.slow

INT8_MODELS = [
    "hello_world_int8.tflite",
    "ad01_int8.tflite",
    "kws_ref_model.tflite",
    "str_ww_ref_model.tflite",
    "person_detect.tflite",
    "vww_96_int8.tflite",
    "pretrainedResnet_quant.tflite",
]
CFLAGS = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror"]
SANITIZE = ["-O0", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-DTVMGEN_ARENA_CHECKS"]


def _meta(mlf: Path) -> dict[str, Any]:
    return json.loads((mlf / "metadata.json").read_text())["models"][0]  # type: ignore[no-any-return]


def _mlf(compiled_mlf: MlfCache, model: str, dest: Path, **options: object) -> Path:
    return extract(compiled_mlf(model, **options), dest)


# ------------------------------------------------------------------------------------------ memory


@pytest.mark.parametrize("model", INT8_MODELS)
def test_int8_arena_with_io_inside_reaches_the_lower_bound(compiled_mlf: MlfCache, model: str) -> None:
    with tarfile.open(compiled_mlf(model)) as tar:
        f = tar.extractfile("metadata.json")
        assert f is not None
        m = json.load(f)["models"][0]
    mem = m["memory"]
    assert m["compute_path"] == "integer" and m["io_buffers"] == "arena"
    assert mem["io_bytes"] == 0
    assert mem["arena_bytes"] <= mem["activation_lower_bound_bytes"], mem
    # The inputs and outputs are arena tensors in the timeline: inputs from step 0, outputs to the end.
    n_ops = len(m["operators"])
    timeline = m["arena_timeline"]
    for io in m["inputs"]:
        assert 0 <= io["arena_offset"] and io["arena_offset"] + io["size_bytes"] <= mem["arena_bytes"]
        assert any(
            r["kind"] == "input" and r["offset"] == io["arena_offset"] and r["first_step"] == 0
            for r in timeline
        )
    for io in m["outputs"]:
        assert io["arena_offset"] % 16 == 0
        assert any(r["offset"] == io["arena_offset"] and r["last_step"] == n_ops for r in m["arena_timeline"])


# ------------------------------------------------------------------------------- calling the model


def _program(m: dict[str, Any], in_arena: bool) -> str:
    """Reads samples (all inputs' bytes) from argv[1], writes all outputs' bytes to argv[2]. In arena mode
    each sample runs three ways (zero copy, own buffers, struct at the slots) and they must agree; with
    the model's EXTERNAL_ARENA macro it first checks set_arena's refusals, then runs on its own buffer."""
    name, up = m["name"], f"TVMGEN_{m['name'].upper()}"
    ins, outs = m["inputs"], m["outputs"]
    size = (
        [f"{up}_{t['c_name'].upper()}_SIZE" for t in ins],
        [f"{up}_{t['c_name'].upper()}_SIZE" for t in outs],
    )
    lines = [
        "#include <stdint.h>",
        "#include <stdio.h>",
        "#include <string.h>",
        f'#include "tvmgen_{name}.h"',
        "",
        *[f"static uint8_t in{k}[{s}] __attribute__((aligned(16)));" for k, s in enumerate(size[0])],
        *[f"static uint8_t out{k}[{s}] __attribute__((aligned(16)));" for k, s in enumerate(size[1])],
        *[f"static uint8_t ref{k}[{s}];" for k, s in enumerate(size[1])],
        "",
        "int main(int argc, char** argv) {",
        "  if (argc != 3) return 2;",
        '  FILE* fin = fopen(argv[1], "rb");',
        '  FILE* fout = fopen(argv[2], "wb");',
        "  if (!fin || !fout) return 2;",
        f"  struct tvmgen_{name}_inputs inputs;",
        f"  struct tvmgen_{name}_outputs outputs;",
        f"#if defined({up}_EXTERNAL_ARENA)",
        f"  static uint8_t buf[{up}_WORKSPACE_SIZE + 32] __attribute__((aligned(16)));",
        "  memset(buf, 0x5A, sizeof buf);",
        f"  if (tvmgen_{name}_run(&inputs, &outputs) != -2) return 10;",
        f"  if (tvmgen_{name}_arena_base() != NULL) return 11;",
        f"  if (tvmgen_{name}_set_arena(NULL, sizeof buf) != 1) return 12;",
        f"  if (tvmgen_{name}_set_arena(buf + 1, {up}_WORKSPACE_SIZE) != 2) return 13;",
        f"  if (tvmgen_{name}_set_arena(buf + 8, {up}_WORKSPACE_SIZE) != 2) return 13;",
        f"  if (tvmgen_{name}_set_arena(buf + 16, {up}_WORKSPACE_SIZE - 1) != 3) return 14;",
        f"  if (tvmgen_{name}_arena_base() != NULL) return 15;  /* refusals leave it unset */",
        f"  if (tvmgen_{name}_set_arena(buf + 16, {up}_WORKSPACE_SIZE) != 0) return 16;",
        f"  if (tvmgen_{name}_arena_base() != buf + 16) return 17;",
        "#endif",
    ]
    if in_arena:
        lines += [
            f"  if (tvmgen_{name}_input_ptr({up}_NUM_INPUTS) != NULL) return 7;",
            f"  if (tvmgen_{name}_output_ptr({up}_NUM_OUTPUTS) != NULL) return 7;",
            f"  if ((void*){up}_{ins[0]['c_name'].upper()}_PTR != tvmgen_{name}_input_ptr(0)) return 8;",
            f"  if ((void*){up}_{outs[0]['c_name'].upper()}_PTR != tvmgen_{name}_output_ptr(0)) return 8;",
        ]
    lines.append("  for (;;) {")
    for k, s in enumerate(size[0]):
        lines.append(f"    if (fread(in{k}, 1, {s}, fin) != {s}) {{ {'break' if k == 0 else 'return 3'}; }}")
    set_struct = [f"    inputs.{t['c_name']} = in{k};" for k, t in enumerate(ins)] + [
        f"    outputs.{t['c_name']} = out{k};" for k, t in enumerate(outs)
    ]
    if in_arena:
        lines += [
            "    /* 1. zero copy */",
            *[f"    memcpy(tvmgen_{name}_input_ptr({k}), in{k}, {s});" for k, s in enumerate(size[0])],
            f"    if (tvmgen_{name}_run(NULL, NULL) != 0) return 4;",
            *[f"    memcpy(ref{k}, tvmgen_{name}_output_ptr({k}), {s});" for k, s in enumerate(size[1])],
            "    /* 2. the struct with buffers of our own */",
            *[f"    memset(out{k}, 0xA5, {s});" for k, s in enumerate(size[1])],
            *set_struct,
            f"    if (tvmgen_{name}_run(&inputs, &outputs) != 0) return 4;",
            *[f"    if (memcmp(out{k}, ref{k}, {s}) != 0) return 5;" for k, s in enumerate(size[1])],
            "    /* 3. the struct pointing at the arena slots (no copies) */",
            *[f"    memcpy(tvmgen_{name}_input_ptr({k}), in{k}, {s});" for k, s in enumerate(size[0])],
            *[f"    inputs.{t['c_name']} = tvmgen_{name}_input_ptr({k});" for k, t in enumerate(ins)],
            *[f"    outputs.{t['c_name']} = tvmgen_{name}_output_ptr({k});" for k, t in enumerate(outs)],
            f"    if (tvmgen_{name}_run(&inputs, &outputs) != 0) return 4;",
            *[
                f"    if (memcmp(tvmgen_{name}_output_ptr({k}), ref{k}, {s}) != 0) return 6;"
                for k, s in enumerate(size[1])
            ],
        ]
    else:
        lines += [
            *set_struct,
            f"    if (tvmgen_{name}_run(&inputs, &outputs) != 0) return 4;",
            *[f"    memcpy(ref{k}, out{k}, {s});" for k, s in enumerate(size[1])],
        ]
    lines += [f"    fwrite(ref{k}, 1, {s}, fout);" for k, s in enumerate(size[1])]
    lines += ["  }", "  fclose(fin);", "  fclose(fout);", "  return 0;", "}", ""]
    return "\n".join(lines)


def _build(mlf: Path, exe: str, flags: list[str]) -> Path:
    m = _meta(mlf)
    main = mlf / f"{exe}.c"
    main.write_text(_program(m, m.get("io_buffers") == "arena"))
    sources = sorted(str(p) for p in (mlf / "codegen/host/src").glob("*.c"))
    include = str(mlf / "codegen/host/include")
    cmd = ["gcc", *CFLAGS, *flags, "-I", include, str(main), *sources, "-o", str(mlf / exe), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return mlf / exe


def _samples(m: dict[str, Any], n: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        row = []
        for t in m["inputs"]:
            dtype = np.dtype(t["dtype"])
            if dtype.kind == "f":
                row.append(rng.uniform(-1, 1, t["shape"]).astype(dtype))
            else:
                info = np.iinfo(dtype)
                row.append(rng.integers(info.min, info.max, t["shape"], endpoint=True).astype(dtype))
        out.append(row)
    return out


def _run(exe: Path, m: dict[str, Any], samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    blob = b"".join(np.ascontiguousarray(a).tobytes() for row in samples for a in row)
    (exe.parent / "in.bin").write_bytes(blob)
    proc = subprocess.run(
        [str(exe), str(exe.parent / "in.bin"), str(exe.parent / "out.bin")], capture_output=True
    )
    assert proc.returncode == 0, f"{exe.name} exit {proc.returncode}\n{proc.stderr.decode()[-4000:]}"
    raw, pos, result = (exe.parent / "out.bin").read_bytes(), 0, []
    for _ in samples:
        row = []
        for t in m["outputs"]:
            row.append(np.frombuffer(raw[pos : pos + t["size_bytes"]], t["dtype"]).reshape(t["shape"]))
            pos += t["size_bytes"]
        result.append(row)
    assert pos == len(raw)
    return result


def _tflm(model: str, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model_path(model).read_bytes(), arena_size=16 << 20)
    result = []
    for row in samples:
        for i, a in enumerate(row):
            interp.set_input(a, i)
        interp.invoke()
        result.append([np.array(interp.get_output(k)) for k in range(len(row and [0]))])
    return result


def test_three_ways_to_call_agree_with_tflm_and_separate_buffers(
    compiled_mlf: MlfCache, tmp_path: Path
) -> None:
    model = "kws_ref_model.tflite"
    arena = _mlf(compiled_mlf, model, tmp_path / "arena")
    separate = _mlf(compiled_mlf, model, tmp_path / "separate", io_buffers="separate")
    m, m_sep = _meta(arena), _meta(separate)
    assert m_sep["io_buffers"] == "separate" and m_sep["memory"]["io_bytes"] == 502
    assert all("arena_offset" not in t for t in m_sep["inputs"] + m_sep["outputs"])
    header_sep = next((separate / "codegen/host/include").glob("*.h")).read_text()
    assert "_OFFSET" not in header_sep and "_IO_IN_ARENA" not in header_sep and "input_ptr" not in header_sep
    samples = _samples(m, 6, seed=19)
    expected = _tflm(model, samples)
    got = _run(_build(arena, "static", []), m, samples)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g[0], e[0].reshape(g[0].shape))
    # The user's own arena, in both I/O modes.
    up = m["name"].upper()
    external = _run(_build(arena, "external", [f"-DTVMGEN_{up}_EXTERNAL_ARENA"]), m, samples)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(external, got, strict=True))
    sep_ext = _run(_build(separate, "external", [f"-DTVMGEN_{up}_EXTERNAL_ARENA"]), m_sep, samples)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(sep_ext, got, strict=True))
    # The generic harness (poisoned arena and outputs, caller's buffers) on the separate-buffer MLF.
    harness = build(separate).run(samples, tmp_path)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(harness, got, strict=True))


@pytest.mark.parametrize(
    "model", ["hello_world_int8.tflite", "hello_world_float.tflite", "kws_ref_model.tflite"]
)
def test_io_in_arena_clean_under_sanitizers_with_arena_checks(
    compiled_mlf: MlfCache, tmp_path: Path, model: str
) -> None:
    """ASan with the executor's arena checks: only the running kernel's tensors are addressable during a
    run, so after it the I/O slots must be open again for the next inputs (three runs per sample)."""
    mlf = _mlf(compiled_mlf, model, tmp_path / "mlf")
    m = _meta(mlf)
    samples = _samples(m, 3, seed=14)
    sanitized = _run(_build(mlf, "sanitized", SANITIZE), m, samples)
    plain = build(_mlf(compiled_mlf, model, tmp_path / "sep", io_buffers="separate")).run(samples, tmp_path)
    for a, b in zip(sanitized, plain, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    up = m["name"].upper()
    ext = _run(_build(mlf, "sanitized_ext", [*SANITIZE, f"-DTVMGEN_{up}_EXTERNAL_ARENA"]), m, samples)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(ext, plain, strict=True))


# ---------------------------------------------------------------------------------- header macros


def _macro_program(m: dict[str, Any]) -> str:
    name, up = m["name"], f"TVMGEN_{m['name'].upper()}"
    lines = [
        "#include <stdio.h>",
        "#include <string.h>",
        f'#include "tvmgen_{name}.h"',
        "",
        "int main(void) {",
    ]
    for what, ios in (("input", m["inputs"]), ("output", m["outputs"])):
        for t in ios:
            p = f"{up}_{t['c_name'].upper()}"
            c = t["c_name"]
            lines += [
                f"  {{ static const unsigned shape[] = {p}_SHAPE;",
                f"    char dims_{c}[(sizeof shape / sizeof shape[0] == {p}_DIMS) ? 1 : -1];",
                f"    char bytes_{c}[(sizeof({p}_TYPE) * {p}_ELEMENTS == {p}_SIZE) ? 1 : -1];",
                f"    (void)dims_{c}; (void)bytes_{c};",
                f'    printf("{c} %s %d", {p}_DTYPE, {p}_DIMS);',
                f'    for (unsigned i = 0; i < {p}_DIMS; ++i) printf(" %u", shape[i]);',
                f'    printf(" %lu %lu", (unsigned long){p}_ELEMENTS, (unsigned long){p}_OFFSET);',
                f"    if ((void*){p}_PTR != tvmgen_{name}_{what}_ptr({ios.index(t)})) return 1;",
                f"#ifdef {p}_SCALE",
                f'    printf(" %a %d", (double){p}_SCALE, (int){p}_ZERO_POINT);',
                "#endif",
                '    printf("\\n"); }',
            ]
    lines += ["  return 0;", "}", ""]
    return "\n".join(lines)


@pytest.mark.parametrize("model", ["kws_ref_model.tflite", "hello_world_float.tflite"])
def test_header_macros_describe_every_input_and_output(
    compiled_mlf: MlfCache, tmp_path: Path, model: str
) -> None:
    mlf = _mlf(compiled_mlf, model, tmp_path / "mlf")
    m = _meta(mlf)
    (mlf / "macros.c").write_text(_macro_program(m))
    sources = sorted(str(p) for p in (mlf / "codegen/host/src").glob("*.c"))
    cmd = ["gcc", *CFLAGS, "-Icodegen/host/include", "macros.c", *sources, "-o", "macros", "-lm"]
    subprocess.run(cmd, cwd=mlf, check=True, capture_output=True)
    printed = subprocess.run([str(mlf / "macros")], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in printed.splitlines()]
    ios = m["inputs"] + m["outputs"]
    assert len(rows) == len(ios)
    for row, t in zip(rows, ios, strict=True):
        words = [t["c_name"], t["dtype"], str(len(t["shape"])), *map(str, t["shape"])]
        words += [str(int(np.prod(t["shape"]))), str(t["arena_offset"])]
        q = t["quantization"]
        if q is not None:  # the scale exactly as metadata.json has it (C's %a: every bit)
            assert float.fromhex(row[-2]) == q["scale"]
            words += [row[-2], str(q["zero_point"])]
        assert row == words
    assert ("quantised" if model.startswith("kws") else "float") == (
        "quantised" if all(t["quantization"] for t in ios) else "float"
    )


def test_scale_literals_round_trip_exactly() -> None:
    from tvmc_micro.compiler.c_emit import c_float_literal
    from tvmc_micro.compiler.errors import LoweringError

    rng = np.random.default_rng(7)
    for v in [
        0.5847029089927673,
        1.0,
        3.0517578125e-05,
        float(np.float32(1e-30)),
        *rng.uniform(1e-6, 1, 50).astype(np.float32),
    ]:
        text = c_float_literal(float(v))
        assert text.endswith("f") and float(np.float32(float(text[:-1]))) == float(v)
    third = 1 / 3  # not a float32: a double literal, exact
    assert not c_float_literal(third).endswith("f") and float(c_float_literal(third)) == third
    with pytest.raises(LoweringError, match="not finite"):
        c_float_literal(float("inf"))


# ---------------------------------------------------------------------------------------- planner


def test_planner_search_reaches_the_live_peak_where_largest_first_fragments() -> None:
    from tvmc_micro.compiler.planner import Interval, _peak, check_plan, plan_arena

    # VWW's first layers with the input in the arena (sizes in bytes, steps): largest-first puts the
    # 36864-byte tensor at 0, the input over it and the first conv output above the input: 64512 bytes.
    ivs = [
        Interval(0, 27648, 0, 0),  # the input
        Interval(1, 18432, 0, 1),
        Interval(2, 18432, 1, 2),
        Interval(3, 36864, 2, 3),
        Interval(4, 9216, 3, 4),
    ]
    plan = plan_arena(ivs)
    check_plan(ivs, plan)
    assert plan.size == _peak(ivs) == 55296


def test_planner_plans_are_valid_and_never_below_the_peak() -> None:
    from tvmc_micro.compiler.planner import Interval, _peak, check_plan, plan_arena

    rng = random.Random(18)
    for _ in range(200):
        ivs = []
        for k in range(rng.randint(1, 14)):
            start = rng.randint(0, 10)
            ivs.append(Interval(k, 16 * rng.randint(1, 40), start, start + rng.randint(0, 4)))
        plan = plan_arena(ivs)
        check_plan(ivs, plan)
        assert plan.size >= _peak(ivs)


# ------------------------------------------------------------------------------------ error paths


def test_bad_io_buffers_option_is_refused(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import CompileOptionError

    with pytest.raises(CompileOptionError, match="--io-buffers 'heap' is not one of arena, separate"):
        compile_model(model_path("hello_world_int8.tflite"), tmp_path / "x.tar", io_buffers="heap")
    assert not (tmp_path / "x.tar").exists()
    proc = subprocess.run(
        [
            "python3",
            "-m",
            "tvmc_micro",
            "compile",
            str(model_path("hello_world_int8.tflite")),
            "-o",
            str(tmp_path / "y.tar"),
            "--io-buffers",
            "heap",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "invalid choice: 'heap'" in proc.stderr


def test_device_glue_zero_copy_and_its_refusals(compiled_mlf: MlfCache, tmp_path: Path) -> None:
    from microtvm_api.model_glue import InvalidMetadataError, render_model_glue, write_model_glue
    from tvmc_micro.device.reference_model import RUNTIME_DIR

    mlf = _mlf(compiled_mlf, "hello_world_int8.tflite", tmp_path / "mlf")
    meta_path = mlf / "metadata.json"
    glue = write_model_glue(meta_path, tmp_path / "glue.c")
    text = glue.read_text()
    assert "static uint8_t tvmrt_input_0" not in text and "_run(NULL, NULL)" in text
    assert "tvmrt_inputs[i].data = (uint8_t*)tvmgen_hello_world_int8_input_ptr(i);" in text
    include = mlf / "codegen/host/include"

    def compile_glue() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "gcc",
                *CFLAGS,
                "-pedantic",
                f"-I{RUNTIME_DIR / 'include'}",
                f"-I{include}",
                "-c",
                str(glue),
                "-o",
                str(tmp_path / "glue.o"),
            ],
            capture_output=True,
            text=True,
        )

    assert compile_glue().returncode == 0, compile_glue().stderr
    # A header whose offsets are not metadata.json's: the glue does not build.
    header = include / "tvmgen_hello_world_int8.h"
    original = header.read_text()
    m = _meta(mlf)
    macro = f"TVMGEN_HELLO_WORLD_INT8_{m['inputs'][0]['c_name'].upper()}_OFFSET"
    header.write_text(
        original.replace(f"#define {macro} {m['inputs'][0]['arena_offset']}\n", f"#define {macro} 4\n")
    )
    result = compile_glue()
    assert result.returncode != 0 and "disagree on where" in result.stderr
    header.write_text(original)
    # Metadata that says "arena" without offsets, or names another mode, is refused.
    doc = json.loads(meta_path.read_text())
    del doc["models"][0]["outputs"][0]["arena_offset"]
    meta_path.write_text(json.dumps(doc))
    with pytest.raises(InvalidMetadataError, match=r"outputs\[0\]\.arena_offset is None"):
        render_model_glue(meta_path)
    doc["models"][0]["io_buffers"] = "heap"
    meta_path.write_text(json.dumps(doc))
    with pytest.raises(InvalidMetadataError, match="io_buffers is 'heap'"):
        render_model_glue(meta_path)
