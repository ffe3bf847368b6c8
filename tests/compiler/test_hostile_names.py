"""Model text never reaches generated C as code: tensor, model, weight and node names full of C syntax,
comment terminators, trigraphs, quotes, backslashes, line breaks and non-ASCII compile with -std=c99
-Wall -Wextra -Werror -Wtrigraphs, keep their own names in metadata.json, appear in the C sources only
escaped (identifiers made by naming.py, comments and string literals escaped), and compute the right
values; the float TFLite one also runs end to end on crt_host (the device glue's strings included)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from compiler_harness import BuiltModel, build, extract

from tests.quantized.tflite_builder import ModelBuilder, add_options, fc_options

# -Wtrigraphs: a trigraph that changes meaning is an error here; -Wcomment (in -Wall): `/*` in a comment.
STRICT = ["-Wtrigraphs", "-Wcomment", "-Wpedantic"]

IN_NAMES = ['serving default/in put;0 "x"', "x */ int evil; /* ??/", "a??!b #define TVMGEN_ALIGNED\\"]
OUT_NAMES = ["out??/\n#error x", "int", "TVMGEN_ALIGNED", "\u00e9t\u00e9 \t\x01 */"]
WEIGHT_NAME = "w */ #include <stdio.h> /* ??="
MODEL_FILE = "m??!*x y.tflite"

# Both fully connected layers share this weight; out3 = in0 + in1.
_W = np.random.default_rng(3).normal(size=(2, 4)).astype(np.float32)


def _float_tflite() -> bytes:
    b = ModelBuilder()
    ins = [b.tensor(n, [1, 4], "float32") for n in IN_NAMES]
    w = b.tensor(WEIGHT_NAME, [2, 4], "float32", data=_W)
    outs = []
    for x, name in zip(ins, OUT_NAMES[:3], strict=True):
        y = b.tensor(name, [1, 2], "float32")
        b.op("FULLY_CONNECTED", [x, w, -1], [y], fc_options(), "FullyConnectedOptions")
        outs.append(y)
    s = b.tensor(OUT_NAMES[3], [1, 4], "float32")
    b.op("ADD", [ins[0], ins[1]], [s], add_options(), "AddOptions")
    return b.build(ins, [*outs, s])


def _float_reference(xs: list[np.ndarray]) -> list[np.ndarray]:
    return [x @ _W.T for x in xs] + [xs[0] + xs[1]]


INT8_IN, INT8_OUT = 'q in */ ??( "', "q out ??) \\"


def _int8_tflite() -> bytes:
    rng = np.random.default_rng(4)
    b = ModelBuilder()
    x = b.tensor(INT8_IN, [1, 8], "int8", 0.05, 3)
    w = b.tensor("qw ??< */", [4, 8], "int8", 0.02, 0, data=rng.integers(-127, 128, (4, 8)).astype(np.int8))
    bias = b.tensor("qb ??>", [4], "int32", 0.001, 0, data=rng.integers(-500, 500, 4).astype(np.int32))
    y = b.tensor(INT8_OUT, [1, 4], "int8", 0.1, -2)
    b.op("FULLY_CONNECTED", [x, w, bias], [y], fc_options(), "FullyConnectedOptions")
    return b.build([x], [y])


ONNX_IN = ['in put;?!#/"', "a??/b */"]
ONNX_OUT = ["y??!", "class", "__Z", "Y??!"]
_WO = np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32)


def _onnx_model() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    w = "W */ /* ??= \u00fc"
    nodes = [
        helper.make_node("MatMul", [ONNX_IN[0], w], ["m */"], name="node ??/ */"),
        helper.make_node("Add", [ONNX_IN[1], ONNX_IN[0]], [ONNX_OUT[0]], name='add "q"'),
        helper.make_node("Relu", ["m */"], [ONNX_OUT[1]], name="relu\n#error"),
        helper.make_node("Neg", ["m */"], [ONNX_OUT[2]], name="neg"),
        helper.make_node("Sigmoid", [ONNX_IN[1]], [ONNX_OUT[3]], name="sig"),
    ]
    graph = helper.make_graph(
        nodes,
        "graph */ ??/",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ONNX_IN],
        [
            helper.make_tensor_value_info(ONNX_OUT[0], TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info(ONNX_OUT[1], TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info(ONNX_OUT[2], TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info(ONNX_OUT[3], TensorProto.FLOAT, [1, 4]),
        ],
        [numpy_helper.from_array(_WO, w)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def _onnx_reference(xs: list[np.ndarray]) -> list[np.ndarray]:
    m = xs[0] @ _WO
    return [xs[1] + xs[0], np.maximum(m, 0), -m, 1 / (1 + np.exp(-xs[1]))]


def _compile(tmp: Path, data: bytes, filename: str) -> tuple[BuiltModel, dict[str, Any]]:
    from tvmc_micro.compiler import compile_model

    src = tmp / filename
    src.write_bytes(data)
    result = compile_model(src, tmp / "m.tar")
    mlf = extract(tmp / "m.tar", tmp / "mlf")
    return build(mlf, extra_cflags=STRICT), result.metadata["models"][0]


def _generated_sources(root: Path) -> dict[Path, str]:
    files = sorted(p for p in root.rglob("*") if p.suffix in (".c", ".h") and "runtime" not in p.parts)
    return {p: p.read_bytes().decode("ascii") for p in files}  # non-ASCII bytes raise here


def _check_no_raw_names(root: Path, names: list[str], in_header: bool = True) -> None:
    from tvmc_micro.compiler.naming import c_comment_text

    sources = _generated_sources(root)
    assert sources
    text = "\n".join(sources.values())
    for name in names:
        # Names that are plain words (`int`, `class`) are checked by their c_name; the others must not
        # appear at all.
        if not re.fullmatch(r"\w+", name):
            assert name not in text, f"raw name {name!r} in the generated C"
    # No trigraph and no comment opener/closer made from model text anywhere.
    assert "??" not in text
    header = "\n".join(t for p, t in sources.items() if p.suffix == ".h")
    for name in names if in_header else []:
        if name in IN_NAMES + OUT_NAMES + ONNX_IN + ONNX_OUT + [INT8_IN, INT8_OUT]:
            assert c_comment_text(name) in header, f"the header does not name {name!r} (escaped)"


def _identifiers(meta: dict[str, Any]) -> list[str]:
    return [t["c_name"] for t in meta["inputs"] + meta["outputs"]]


def _samples(n: int, shapes: list[list[int]], seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(n)]


def _cxx_accepts_header(mlf: Path, model: str) -> None:
    """The interface header is valid C++ too (a tensor called `class` must not become a member name)."""
    header = mlf / "codegen" / "host" / "include" / f"tvmgen_{model}.h"
    subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c++", str(header)],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_float_tflite_hostile_names(tmp_path: Path) -> None:
    built, meta = _compile(tmp_path, _float_tflite(), MODEL_FILE)
    assert meta["name"] == "m_x_y"
    assert [t["name"] for t in meta["inputs"]] == IN_NAMES
    assert [t["name"] for t in meta["outputs"]] == OUT_NAMES
    assert _identifiers(meta) == [
        "serving_default_in_put_0_x",
        "x_int_evil",
        "a_b_define_TVMGEN_ALIGNED",
        "out_error_x",
        "v_int",
        "v_TVMGEN_ALIGNED",
        "t",
    ]
    _check_no_raw_names(tmp_path / "mlf", IN_NAMES + OUT_NAMES + [WEIGHT_NAME, MODEL_FILE])
    _cxx_accepts_header(tmp_path / "mlf", meta["name"])
    samples = _samples(3, [[1, 4]] * 3, seed=1)
    for got, x in zip(built.run(samples, tmp_path), samples, strict=True):
        for g, want in zip(got, _float_reference(x), strict=True):
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_int8_tflite_hostile_names(tmp_path: Path) -> None:
    pytest.importorskip("tflite_micro")
    from tests.quantized.qharness import Tflm

    model = _int8_tflite()
    built, meta = _compile(tmp_path, model, "q *.tflite")
    assert meta["compute_path"] == "integer"
    assert [t["name"] for t in meta["inputs"] + meta["outputs"]] == [INT8_IN, INT8_OUT]
    _check_no_raw_names(tmp_path / "mlf", [INT8_IN, INT8_OUT, "qw ??< */", "qb ??>"])
    rng = np.random.default_rng(2)
    xs = [rng.integers(-128, 128, (1, 8)).astype(np.int8) for _ in range(4)]
    tflm = Tflm(model)
    for got, x in zip(built.run([[x] for x in xs], tmp_path), xs, strict=True):
        np.testing.assert_array_equal(got[0], tflm(x)[0])


@pytest.mark.slow
def test_onnx_hostile_names(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    built, meta = _compile(tmp_path, _onnx_model(), "o??!.onnx")
    assert [t["name"] for t in meta["inputs"]] == ONNX_IN
    assert [t["name"] for t in meta["outputs"]] == ONNX_OUT
    ids = _identifiers(meta)
    assert "v_class" in ids and len({i.upper() for i in ids}) == len(ids)  # y??! and Y??! differ in C too
    nodes = ["node ??/ */", 'add "q"', "relu\n#error", "graph */ ??/", "W */ /* ??= \u00fc", "m */"]
    _check_no_raw_names(tmp_path / "mlf", ONNX_IN + ONNX_OUT + nodes)
    _cxx_accepts_header(tmp_path / "mlf", meta["name"])
    samples = _samples(3, [[1, 4]] * 2, seed=2)
    for got, x in zip(built.run(samples, tmp_path), samples, strict=True):
        for g, want in zip(got, _onnx_reference(x), strict=True):
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


def _tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"tvmc {' '.join(args)} failed:\n{r.stderr}"
    return r


@pytest.mark.slow
def test_hostile_names_end_to_end_on_crt_host(tmp_path: Path) -> None:
    """The device glue (model_glue.c) carries the names as string literals; `tvmc run` matches them."""
    from tvmc_micro.compiler.naming import c_string_literal

    src = tmp_path / MODEL_FILE
    src.write_bytes(_float_tflite())
    tar = tmp_path / "m.tar"
    _tvmc("compile", str(src), "-o", str(tar))
    project = tmp_path / "project"
    _tvmc("micro", "create-project", str(project), str(tar), "crt_host")
    _tvmc("micro", "build", str(project))
    glue = next(project.rglob("model_glue.c"))
    _check_no_raw_names(glue.parent, IN_NAMES + OUT_NAMES, in_header=False)
    text = glue.read_text(encoding="ascii")
    for name in IN_NAMES + OUT_NAMES:
        assert c_string_literal(name) in text, f"the device glue does not carry {name!r} (escaped)"
    assert r'"out\?\?/\012#error x"' in text, "output label not escaped as expected"
    _tvmc("micro", "flash", str(project))
    xs = _samples(1, [[1, 4]] * 3, seed=7)[0]
    np.savez(tmp_path / "in.npz", **dict(zip(IN_NAMES, xs, strict=True)))
    _tvmc(
        "run",
        "--device",
        "micro",
        str(project),
        "-i",
        str(tmp_path / "in.npz"),
        "-o",
        str(tmp_path / "o.npz"),
    )
    with np.load(tmp_path / "o.npz") as out:
        assert sorted(out.files) == sorted(OUT_NAMES)
        for name, want in zip(OUT_NAMES, _float_reference(xs), strict=True):
            np.testing.assert_allclose(out[name].reshape(want.shape), want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_input_and_output_names_differing_only_in_case(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["X"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    built, meta = _compile(tmp_path, model.SerializeToString(), "case.onnx")
    assert _identifiers(meta) == ["x", "X_1"]
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    np.testing.assert_array_equal(built.run([[x]], tmp_path)[0][0], np.maximum(x, 0))
