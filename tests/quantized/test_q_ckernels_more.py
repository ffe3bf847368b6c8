"""More DSP C kernels (compiler/quantized/ckernels.py): per-channel requantisation with channels outside
tvmc_rqz's domain (dead channels of real models: right shifts up to 31, zero multipliers, a shift of 1),
FULLY_CONNECTED, one-input-channel DEPTHWISE_CONV_2D as a conv; generated straight from specs and compared
with numpy on the host under UBSan, and whole models against TFLite Micro (host, and QEMU mps2_an386)."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qharness import Tflm, random_input
from synthetic import Synthetic, _Net
from test_q_ckernels import GEOMS, M4, _check_generated, _compile, _expanded, _kernel_source, _spec

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("tvm_available")


@pytest.mark.parametrize("kind", ["conv", "depthwise"])
def test_dead_channels_stay_on_the_fast_kernel(kind: str, tmp_path: Path) -> None:
    """Most channels out of tvmc_rqz's domain (as in MLPerf Tiny's VWW, where 100 of 128 are): the kernel
    branches per channel instead of leaving for a slow loop, and stays bit-exact."""
    from tvmc_micro.compiler.quantized import ckernels

    rng = np.random.default_rng(zlib.crc32(f"dead/{kind}".encode()))
    geom = GEOMS[kind]
    oc = geom["out_shape"][3]
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=oc)]
    shifts = [int(v) for v in rng.integers(-9, -2, size=oc)]
    # right shift 31, 23, a zero multiplier with TFLite's shift 0, a shift of 1; the rest in the domain
    shifts[0], shifts[1] = -31, -23
    mults[2], shifts[2] = 0, 0
    shifts[3] = -1
    spec = _spec("conv2d" if kind == "conv" else kind, GEOMS[kind], mults, shifts, (-7, 5), (-128, 127))
    assert ckernels._rq_mode(spec) == "table"
    gen = ckernels.generate(json.dumps(spec), "kern", ["int8", "int8", "int32", "int32", "int8", "int8"])
    assert gen is not None and "tvmc_rq_cold(" in _expanded(gen.source)
    _check_generated(spec, mults, shifts, rng, tmp_path)


# Depthwise rows: every column inside the image (VALID: only the loop without bounds tests, no zero-point
# row), none inside (a 2x2 map under a 3x3 kernel: every block unrolled at the edges), edge blocks on both
# sides of the loop, a dilated kernel hanging over the right edge only, channels past the last group of 4,
# edge rows copied into the row buffer or, for rows too wide for it (3 x 40 x 32 bytes), read through one
# pointer per kernel row.
DW_ROW_GEOMS = {
    "dw_all_inside": ([1, 7, 6, 12], [1, 3, 3, 12], [1, 3, 2, 12], [2, 2], [1, 1], [0, 0]),
    "dw_none_inside": ([1, 2, 2, 4], [1, 3, 3, 4], [1, 2, 2, 4], [1, 1], [1, 1], [1, 1]),
    "dw_mixed_rows": ([1, 9, 9, 9], [1, 3, 3, 9], [1, 9, 9, 9], [1, 1], [1, 1], [1, 1]),
    "dw_few_inside": ([1, 5, 5, 9], [1, 3, 3, 9], [1, 5, 5, 9], [1, 1], [1, 1], [1, 1]),
    "dw_mixed_dilated": ([1, 8, 7, 6], [1, 2, 3, 6], [1, 6, 5, 6], [1, 1], [2, 1], [0, 1]),
    "dw_wide_rows": ([1, 4, 40, 32], [1, 3, 3, 32], [1, 4, 40, 32], [1, 1], [1, 1], [1, 1]),
}


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("name", sorted(DW_ROW_GEOMS))
def test_depthwise_row_plans(name: str, in_place: bool, tmp_path: Path) -> None:
    from tvmc_micro.compiler.quantized import ckernels

    data, weight, out, stride, dilation, pad = DW_ROW_GEOMS[name]
    geom = {"data_shape": data, "weight_shape": weight, "out_shape": out}
    geom.update({"stride": stride, "dilation": dilation, "pad": pad})
    rng = np.random.default_rng(zlib.crc32(f"dwi/{name}".encode()))
    n = out[3]
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=n)]
    shifts = [int(v) for v in rng.integers(-9, -2, size=n)]
    spec = _spec("depthwise", geom, mults, shifts, (-3, 9), (-128, 127))
    plans = {  # (XL, XR, zero-point rows, row buffer)
        "dw_all_inside": (0, 2, False, False),
        "dw_none_inside": (2, 2, True, True),
        "dw_mixed_rows": (2, 8, True, True),
        "dw_few_inside": (2, 4, True, True),
        "dw_mixed_dilated": (2, 4, False, False),
        "dw_wide_rows": (2, 38, True, False),  # 3 x 40 x 32 B of rows + 2,304 B of weights: too much stack
    }
    xl, xr, zrow, rowbuf = plans[name]
    assert ckernels._dw_plan(spec) == (xl, xr, zrow)
    gen = ckernels.generate(json.dumps(spec), "kern", ["int8", "int8", "int32", "int32", "int8", "int8"])
    assert gen is not None
    defines = {f"#define TVMC_DW_{k} {v}\n" for k, v in (("XL", xl), ("XR", xr), ("ZROW", int(zrow)))}
    defines.add(f"#define TVMC_DW_ROWBUF {int(rowbuf)}\n")
    assert all(d in gen.source for d in defines)
    _check_generated(spec, mults, shifts, rng, tmp_path, in_place=in_place)


# Convs whose kernel rows are whole 4-tap groups (kw * ic % 4 == 0) widen rows straight from the input:
# rows above/below the image, rows cut by the left or right edge, strides, a 2-wide kernel whose window
# hangs over the bottom/right edge only (SAME with an even kernel).
CONV_ROW_GEOMS = {
    "conv_rows_3x3_c4": ([1, 5, 6, 4], [6, 3, 3, 4], [1, 5, 6, 6], [1, 1], [1, 1]),
    "conv_rows_s2_c8": ([1, 7, 7, 8], [5, 3, 3, 8], [1, 4, 4, 5], [2, 2], [1, 1]),
    "conv_rows_2x2_c2": ([1, 6, 5, 2], [3, 2, 2, 2], [1, 6, 5, 3], [1, 1], [0, 0]),
    "conv_rows_1ch_kw4": ([1, 9, 6, 1], [8, 5, 4, 1], [1, 5, 3, 8], [2, 2], [2, 1]),
}


@pytest.mark.parametrize("mode", ["table", "fixed"])
@pytest.mark.parametrize("name", sorted(CONV_ROW_GEOMS))
def test_conv_rows_widened_from_the_input(name: str, mode: str, tmp_path: Path) -> None:
    from tvmc_micro.compiler.quantized import ckernels

    data, weight, out, stride, pad = CONV_ROW_GEOMS[name]
    geom = {"data_shape": data, "weight_shape": weight, "out_shape": out}
    geom.update({"stride": stride, "dilation": [1, 1], "pad": pad})
    rng = np.random.default_rng(zlib.crc32(f"rows/{name}/{mode}".encode()))
    n = 1 if mode == "fixed" else out[3]
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=n)]
    shifts = [int(v) for v in rng.integers(-9, -2, size=n)]
    spec = _spec("conv2d", geom, mults, shifts, (-3, 9), (-128, 127))
    dtypes = ["int8", "int8", "int32", *(["int32", "int8"] if n > 1 else []), "int8"]
    gen = ckernels.generate(json.dumps(spec), "kern", dtypes)
    assert gen is not None and "int16_t* d = dst + ky *" in _expanded(gen.source)
    _check_generated(spec, mults, shifts, rng, tmp_path)


# K % 4 != 0 with an assembled patch: padded to a multiple of 4 with zero taps and zero weights when that
# adds at most 1/8 more MACs (K 27 -> 28, 18 -> 20), otherwise a scalar tail (K 6, 9).
K_TAIL_GEOMS = {
    "k27_padded": ([1, 9, 8, 3], [8, 3, 3, 3], [1, 4, 4, 8], [2, 2], [0, 0], True),
    "k18_padded": ([1, 5, 5, 2], [5, 3, 3, 2], [1, 5, 5, 5], [1, 1], [1, 1], True),
    "k6_tail": ([1, 6, 5, 1], [7, 3, 2, 1], [1, 6, 5, 7], [1, 1], [1, 0], False),
    "k9_tail": ([1, 6, 5, 1], [4, 3, 3, 1], [1, 3, 3, 4], [2, 2], [1, 1], False),
}


@pytest.mark.parametrize("name", sorted(K_TAIL_GEOMS))
def test_conv_k_not_a_multiple_of_4(name: str, tmp_path: Path) -> None:
    from tvmc_micro.compiler.quantized import ckernels

    data, weight, out, stride, pad, padded = K_TAIL_GEOMS[name]
    geom = {"data_shape": data, "weight_shape": weight, "out_shape": out}
    geom.update({"stride": stride, "dilation": [1, 1], "pad": pad})
    rng = np.random.default_rng(zlib.crc32(f"ktail/{name}".encode()))
    n = out[3]
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=n)]
    shifts = [int(v) for v in rng.integers(-9, -2, size=n)]
    spec = _spec("conv2d", geom, mults, shifts, (5, -9), (-128, 127))
    gen = ckernels.generate(json.dumps(spec), "kern", ["int8", "int8", "int32", "int32", "int8", "int8"])
    assert gen is not None and ("memset((int8_t*)(ws" in _expanded(gen.source)) == padded
    _check_generated(spec, mults, shifts, rng, tmp_path)


# ---- FULLY_CONNECTED ----


def _fc_reference(
    spec: dict[str, Any], x: np.ndarray, w: np.ndarray, b: np.ndarray, mults: list[int], shifts: list[int]
) -> np.ndarray:
    from tvmc_micro.compiler.quantized import fixedpoint as fp

    acc = x.astype(np.int64) @ w.astype(np.int64).T + b.astype(np.int64)
    out = np.empty(acc.shape, np.int64)
    lo, hi = spec["act_range"]
    for (r, u), a in np.ndenumerate(acc):
        m, s = (mults[u], shifts[u]) if len(mults) > 1 else (mults[0], shifts[0])
        out[r, u] = min(max(fp.multiply_by_quantized_multiplier(int(a), m, s) + spec["out_zp"], lo), hi)
    return out.astype(np.int8)


def _check_fc(
    spec: dict[str, Any],
    mults: list[int],
    shifts: list[int],
    rng: np.random.Generator,
    tmp_path: Path,
) -> None:
    """Generate the FULLY_CONNECTED kernel for `spec`, run it on the host under UBSan with random data and
    compare with numpy."""
    from test_q_ckernels import _c_array
    from tvmc_micro.compiler.quantized import ckernels

    batches, depth, units = spec["batches"], spec["depth"], spec["units"]
    x = rng.integers(-128, 128, size=(batches, depth)).astype(np.int8)
    w = rng.integers(-127, 128, size=(units, depth)).astype(np.int8)
    b = rng.integers(-3000, 3000, size=units).astype(np.int32)
    want = _fc_reference(spec, x, w, b, mults, shifts)
    tables: list[tuple[str, str, np.ndarray]] = []
    if len(mults) > 1:
        tables.append(("int32", "rq_mult", np.array(mults)))
        if spec["requant"]["has_left"]:
            tables.append(("int8", "rq_left", np.maximum(shifts, 0)))
        tables.append(("int8", "rq_right", np.maximum(-np.array(shifts), 0)))
    params = [
        ("int8", "data", x),
        ("int8", "weight", w),
        ("int32", "bias", b),
        *tables,
        ("int8", "out", np.zeros(want.size)),
    ]
    gen = ckernels.generate(json.dumps(spec), "kern", [d for d, _, _ in params])
    assert gen is not None and ("tvmc_smlad(" in _expanded(gen.source)) == (depth >= 4)
    if gen.rq_layout is not None:  # the per-channel tables precomputed, as the driver lays them out
        i, layout = gen.rq_layout
        laid = layout(np.asarray(params[i][2]))
        params[i] = (str(laid.dtype), params[i][1], laid.reshape(-1))
        assert gen.param_dtypes[i] == str(laid.dtype)
    ctype = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t"}
    decls = [_c_array(ctype[d], n, a) for d, n, a in params]
    args = [n for _, n, _ in params]
    assert gen.workspace is None and gen.inplace == ()
    src = tmp_path / "fc.c"
    src.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        + ckernels.PRELUDE
        + gen.source
        + "\n".join(decls)
        + f"\nint main(void) {{\n  int i;\n  kern({', '.join(args)});\n"
        + f'  for (i = 0; i < {want.size}; ++i) printf("%d\\n", out[i]);\n  return 0;\n}}\n'
    )
    exe = tmp_path / "fc"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function"]
    flags += ["-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
    subprocess.run(["gcc", *flags, str(src), "-o", str(exe)], check=True)
    got = np.array(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split(), int)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def _fc_spec(
    batches: int, depth: int, units: int, mults: list[int], shifts: list[int], act: tuple[int, int]
) -> dict[str, Any]:
    """A spec as kernels.fully_connected attaches it (output zero point -9)."""
    rq = _spec("fully_connected", {}, mults, shifts, (0, -9), act)["requant"]
    return {
        "kind": "fully_connected",
        "batches": batches,
        "depth": depth,
        "units": units,
        "out_zp": -9,
        "requant": rq,
        "act_range": list(act),
    }


# (batches, depth, units, requant case): depth % 4 in 0..3, units % 4 in 0..3, units < 4, batch > 1
FC_CASES = {
    "ad01_fixed": (1, 640, 128, "fixed"),
    "k13_u7_table": (1, 13, 7, "table"),
    "k2_u3_dead": (1, 2, 3, "dead"),
    "b3_k18_u9_fixed_relu": (3, 18, 9, "fixed_relu"),
    "b2_k31_u12_left": (2, 31, 12, "left"),
    "b4_k8_u4_tensor_exact": (4, 8, 4, "tensor_exact"),
    "b2_k64_u10_dead": (2, 64, 10, "dead"),
}


def _fc_case(name: str) -> tuple[dict[str, Any], list[int], list[int], np.random.Generator]:
    batches, depth, units, case = FC_CASES[name]
    rng = np.random.default_rng(zlib.crc32(f"fc/{name}".encode()))
    n = 1 if case in ("fixed", "fixed_relu", "tensor_exact") else units
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=n)]
    shifts = [int(v) for v in rng.integers(-10, -4, size=n)]
    if case == "dead":
        shifts[0], mults[-1], shifts[-1] = -29, 0, 0
    elif case == "left":
        shifts[1] = 1
    elif case == "tensor_exact":
        shifts[0] = -1
    act = (-40, 90) if case == "fixed_relu" else (-128, 127)
    return _fc_spec(batches, depth, units, mults, shifts, act), mults, shifts, rng


@pytest.mark.parametrize("name", sorted(FC_CASES))
def test_fully_connected_kernel(name: str, tmp_path: Path) -> None:
    from tvmc_micro.compiler.quantized import ckernels

    spec, mults, shifts, rng = _fc_case(name)
    mode = {"fixed": "fixed", "fixed_relu": "fixed", "left": "exact", "tensor_exact": "exact"}
    assert ckernels._rq_mode(spec) == mode.get(FC_CASES[name][3], "table")
    _check_fc(spec, mults, shifts, rng, tmp_path)


@pytest.mark.parametrize("kind", ["conv", "depthwise", "fc"])
def test_in_domain_layers_need_no_branch(kind: str, tmp_path: Path) -> None:
    """kernels.py marks a per-channel layer whose every channel is in tvmc_rqz's domain; its kernel then has
    no per-channel branch and is still exact."""
    from tvmc_micro.compiler.quantized import ckernels, kernels
    from tvmc_micro.compiler.quantized.requant import Requant

    rng = np.random.default_rng(zlib.crc32(f"in_domain/{kind}".encode()))
    n = 7 if kind == "fc" else GEOMS[kind]["out_shape"][3]
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=n)]
    shifts = [int(v) for v in rng.integers(-22, -1, size=n)]
    shifts[0], shifts[-1] = -2, -22  # the domain's edges
    rq = kernels._requant_spec(Requant(np.array(mults, np.int32), np.array(shifts, np.int32)))
    assert rq["in_domain"] is True
    dead = kernels._requant_spec(Requant(np.array(mults, np.int32), np.array([-23, *shifts[1:]], np.int32)))
    assert dead["in_domain"] is False
    if kind == "fc":
        spec = _fc_spec(2, 21, n, mults, shifts, (-128, 127))
    else:
        spec = _spec("conv2d" if kind == "conv" else kind, GEOMS[kind], mults, shifts, (-7, 5), (-128, 127))
    assert spec["requant"] == {k: v for k, v in rq.items() if k != "in_domain"}  # the same fields otherwise
    spec["requant"] = rq
    dtypes = ["int8", "int8", "int32", "int32", "int8", "int8"]
    gen = ckernels.generate(json.dumps(spec), "kern", dtypes)
    assert gen is not None
    expanded = _expanded(gen.source)
    assert "tvmc_rq_cold(" not in expanded and "tvmc_rqz(" in expanded
    if kind == "fc":
        _check_fc(spec, mults, shifts, rng, tmp_path)
    else:
        _check_generated(spec, mults, shifts, rng, tmp_path)


# ---- ADD / SUB ----


def _add_reference(spec: dict[str, Any], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from tvmc_micro.compiler.quantized import fixedpoint as fp

    def rescale(x: np.ndarray, zp: int, rq: dict[str, int]) -> list[int]:
        return [
            fp.multiply_by_quantized_multiplier((int(v) - zp) << spec["left_shift"], rq["mult"], rq["shift"])
            for v in x
        ]

    sa, sb = rescale(a, spec["zp_a"], spec["rq_a"]), rescale(b, spec["zp_b"], spec["rq_b"])
    rq = spec["requant"]
    shift = rq["left"] - rq["right"]
    lo, hi = spec["act_range"]
    out = []
    for x, y in zip(sa, sb, strict=True):
        raw = fp.multiply_by_quantized_multiplier(x - y if spec["subtract"] else x + y, rq["mult"], shift)
        out.append(min(max(raw + spec["out_zp"], lo), hi))
    return np.array(out, np.int8)


ADD_CASES = {
    # name: (elements, subtract, zp_a, zp_b, out_zp, out shift, act range, a's shift)
    "resnet_like": (4096, False, -3, 7, -128, -19, (-128, 127), 0),
    "sub_odd_len": (1031, True, 127, -128, 5, -18, (-128, 127), -1),
    "relu_clamp": (1026, False, -128, 127, -20, -20, (-20, 127), -3),
    "out_exact_shift": (1025, False, 0, 0, 0, -24, (-128, 127), 0),  # outside tvmc_rqz's domain
    "left_rescale": (1027, True, 10, -10, 3, -17, (-100, 90), 1),  # a left-shifting input rescale
}


def _add_spec(name: str, rng: np.random.Generator) -> dict[str, Any]:
    n, subtract, zpa, zpb, zpo, out_shift, act, a_shift = ADD_CASES[name]
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=3)]
    rq = _spec("add", {}, [mults[2]], [out_shift], (0, zpo), act)["requant"]
    return {
        "kind": "add",
        "elements": n,
        "subtract": subtract,
        "zp_a": zpa,
        "zp_b": zpb,
        "left_shift": 20,
        "rq_a": {"mult": mults[0], "shift": a_shift},
        "rq_b": {"mult": mults[1], "shift": -2},
        "requant": rq,
        "out_zp": zpo,
        "act_range": list(act),
    }


@pytest.mark.parametrize("where", ["apart", "over_a", "over_b"])
@pytest.mark.parametrize("name", sorted(ADD_CASES))
def test_add_kernel(name: str, where: str, tmp_path: Path) -> None:
    """The table-driven ADD/SUB against TFLite's arithmetic in numpy, every byte value of both inputs, in
    every requantisation mode; "over_a"/"over_b": run with the output over that input, as the planner
    places the kernel's declared in-place pairs."""
    from test_q_ckernels import _c_array
    from tvmc_micro.compiler.quantized import ckernels

    rng = np.random.default_rng(zlib.crc32(f"add/{name}".encode()))
    spec = _add_spec(name, rng)
    n = spec["elements"]
    a = np.resize(np.arange(-128, 128), n).astype(np.int8)  # every value, against random partners
    b = rng.integers(-128, 128, size=n).astype(np.int8)
    want = _add_reference(spec, a, b)
    gen = ckernels.generate(json.dumps(spec), "kern", ["int8", "int8", "int8"])
    assert gen is not None and gen.workspace == (2048, "int32")
    assert gen.inplace == ((2, 0, 0), (2, 1, 0))
    out = {"apart": "out", "over_a": "a", "over_b": "b"}[where]
    src = tmp_path / "add.c"
    src.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        + ckernels.PRELUDE
        + gen.source
        + "\n".join([_c_array("int8_t", "a", a), _c_array("int8_t", "b", b), f"static int8_t out[{n}];"])
        + "\nstatic int32_t wsbuf[512];\n"
        + f"int main(void) {{\n  int i;\n  (void)out;\n  kern(a, b, {out}, wsbuf);\n"
        + f'  for (i = 0; i < {n}; ++i) printf("%d\\n", {out}[i]);\n  return 0;\n}}\n'
    )
    exe = tmp_path / "add"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function"]
    flags += ["-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
    subprocess.run(["gcc", *flags, str(src), "-o", str(exe)], check=True)
    got = np.array(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split(), int)
    np.testing.assert_array_equal(got, want)


def test_small_or_broadcast_add_keeps_the_tir_kernel() -> None:
    from tvmc_micro.compiler.quantized import kernels_elementwise
    from tvmc_micro.compiler.quantized.ckernels import SPEC_ATTR
    from tvmc_micro.compiler.quantized.requant import Requant

    rq = Requant.from_real([0.25])
    params = kernels_elementwise.AddParams(1, 2, 3, 20, rq, rq, Requant.from_real([1e-5]), (-128, 127))
    big = kernels_elementwise.add((1, 32, 32), (1, 32, 32), (1, 32, 32), params, "add")
    assert SPEC_ATTR in big.attrs
    small, wide = (1, 31, 32), (1, 32, 32)  # 992 elements; a broadcast
    for shape_a, shape_b, out in [(small, small, small), (wide, (1, 1, 32), wide)]:
        f = kernels_elementwise.add(shape_a, shape_b, out, params, "add")
        assert f.attrs is None or SPEC_ATTR not in f.attrs


# ---- AVERAGE_POOL_2D ----


def _pool_reference(spec: dict[str, Any], x: np.ndarray) -> np.ndarray:
    n, ih, iw, ch = spec["data_shape"]
    _, oh, ow, _ = spec["out_shape"]
    (fh, fw), (sh, sw), (pt, pl) = spec["filter"], spec["stride"], spec["pad"]
    lo, hi = spec["act_range"]
    out = np.empty((n, oh, ow, ch), np.int64)
    for b, oy, ox in np.ndindex(n, oh, ow):
        y0, x0 = oy * sh - pt, ox * sw - pl
        win = x[b, max(y0, 0) : min(y0 + fh, ih), max(x0, 0) : min(x0 + fw, iw)].astype(np.int64)
        cnt = win.shape[0] * win.shape[1]
        for c in range(ch):
            s = int(win[:, :, c].sum())
            avg = (s + cnt // 2) // cnt if s > 0 else -((-s + cnt // 2) // cnt)  # half away from zero
            out[b, oy, ox, c] = min(max(avg, lo), hi)
    return out.astype(np.int8)


POOL_CASES = {
    # name: (data shape, out shape, filter, stride, pad, act range, fill)
    "kws_global": ([1, 25, 5, 64], [1, 1, 1, 64], [25, 5], [25, 5], [0, 0], (-128, 127), None),
    "same_3x3_s2_c7": ([2, 7, 6, 7], [2, 4, 3, 7], [3, 3], [2, 2], [1, 1], (-128, 127), None),
    "2x2_relu6_c5": ([1, 6, 4, 5], [1, 3, 2, 5], [2, 2], [2, 2], [0, 0], (-20, 100), None),
    "255_taps_min": ([1, 15, 17, 4], [1, 1, 1, 4], [15, 17], [1, 1], [0, 0], (-128, 127), -128),
    "255_taps_max": ([1, 15, 17, 8], [1, 1, 1, 8], [15, 17], [1, 1], [0, 0], (-128, 127), 127),
}


@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_average_pool_kernel(name: str, tmp_path: Path) -> None:
    """The SXTAB16 pool against TFLite's average in numpy: padded windows (fewer taps at the edges), batches,
    channel tails, clamps, and the largest window whose 16-bit lane sums cannot overflow, filled with
    either extreme."""
    from test_q_ckernels import _c_array
    from tvmc_micro.compiler.quantized import ckernels

    data, out, filt, stride, pad, act, fill = POOL_CASES[name]
    spec = {"kind": "avg_pool", "data_shape": data, "out_shape": out, "filter": filt, "stride": stride}
    spec.update({"pad": pad, "act_range": list(act)})
    rng = np.random.default_rng(zlib.crc32(f"pool/{name}".encode()))
    x = rng.integers(-128, 128, size=data).astype(np.int8) if fill is None else np.full(data, fill, np.int8)
    want = _pool_reference(spec, x)
    gen = ckernels.generate(json.dumps(spec), "kern", ["int8", "int8"])
    assert gen is not None and "tvmc_sxtab16(" in _expanded(gen.source)
    src = tmp_path / "pool.c"
    src.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        + ckernels.PRELUDE
        + gen.source
        + _c_array("int8_t", "x", x)
        + f"\nstatic int8_t y[{want.size}];\n"
        + "int main(void) {\n  int i;\n  kern(x, y);\n"
        + f'  for (i = 0; i < {want.size}; ++i) printf("%d\\n", y[i]);\n  return 0;\n}}\n'
    )
    exe = tmp_path / "pool"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function"]
    flags += ["-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
    subprocess.run(["gcc", *flags, str(src), "-o", str(exe)], check=True)
    got = np.array(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split(), int)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_pool_over_255_taps_keeps_the_tir_kernel() -> None:
    from tvmc_micro.compiler.quantized import kernels
    from tvmc_micro.compiler.quantized.ckernels import SPEC_ATTR

    geo = kernels.ConvGeometry((1, 1), (1, 1), (0, 0))
    small = kernels.average_pool2d((1, 15, 17, 4), (1, 1, 1, 4), (15, 17), geo, (-128, 127), "p")
    assert SPEC_ATTR in small.attrs
    big = kernels.average_pool2d((1, 16, 16, 4), (1, 1, 1, 4), (16, 16), geo, (-128, 127), "p")
    assert SPEC_ATTR not in big.attrs


# ---- whole models through tvmc compile for cortex-m4, every intermediate against TFLite Micro ----


def dspnet2(seed: int) -> Synthetic:
    """int8 in; the layer classes the kernels above add: one-input-channel depthwise with multipliers
    (strided SAME, VALID with odd channel counts), FULLY_CONNECTED with batches > 1 (per-tensor) and over a
    flattened map (per-channel, fused RELU, depth not a multiple of 4), a same-shape ADD with RELU, a
    padded strided AVERAGE_POOL_2D."""
    net = _Net(seed)
    shape = (1, 13, 10, 1)
    x = net.act("input", shape)
    y = net.depthwise(x, (3, 3), 8, per_channel=True, padding="SAME", stride=(2, 2))
    net.depthwise(x, (3, 2), 5, per_channel=False, padding="VALID")
    f = net.fc(y, 6, per_channel=False)  # [35, 8] x [6, 8]^T
    flat = net.reshape(f, (1, 210))
    net.fc(flat, 13, per_channel=True, activation="RELU")
    c1 = net.conv(x, 8, (3, 3), per_channel=True, padding="SAME")
    c2 = net.conv(x, 8, (1, 1), per_channel=False, padding="VALID")
    added = net.binary("ADD", c1, c2, activation="RELU")  # 1,040 elements: the table kernel
    net.pool("AVERAGE_POOL_2D", added, (3, 3), (2, 2), "SAME")  # edge windows have fewer taps
    model = net.b.build([x], net.outputs)
    return Synthetic(f"dspnet2_{seed}", model, ["int8"], [shape], net.output_names)


@pytest.mark.parametrize("seed", [3, 8])
def test_whole_model_bit_exact_on_host(seed: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    sys.path.insert(0, str(REPO / "tests" / "compiler"))
    from compiler_harness import build, extract

    syn = dspnet2(seed)
    mlf = _compile(syn.model, syn.name, M4, tmp_path_factory)
    src = _kernel_source(mlf)
    assert "FULLY_CONNECTED 35x8 -> 35x6" in src and "FULLY_CONNECTED 1x210 -> 1x13" in src
    # the multiplier-8 depthwise runs as a conv over its [kh, kw, oc] weights
    (dw8,) = [k for k in src.split("/* CONV_2D ")[1:] if k.startswith("13x10x1 -> 7x5x8, kernel 3x3")]
    assert "#define TVMC_CONV_WEIGHT_HWO 1" in dw8
    assert "ADD of 1040 elements" in src and "tvmc_sxtab16(" in src
    work = tmp_path_factory.mktemp(f"{syn.name}_host")
    built = build(extract(mlf, work / "mlf"))
    rng = np.random.default_rng(seed)
    samples = [[random_input(rng, "int8", syn.input_shapes[0])] for _ in range(20)]
    ref = Tflm(syn.model)
    for sample, got in zip(samples, built.run(samples, work), strict=True):
        for j, (r, o) in enumerate(zip(ref(*sample), got, strict=True)):
            np.testing.assert_array_equal(o.reshape(r.shape), r, err_msg=f"output #{j} {syn.output_names[j]}")


@pytest.mark.slow
def test_whole_model_bit_exact_under_qemu(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same kernels with real SMLAD/SXTB16/SSAT on QEMU mps2_an386 (Cortex-M4): every output of
    dspnet2 equal to TFLite Micro."""
    sys.path.insert(0, str(REPO / "tests" / "templates" / "cortex_m"))
    from cortex_m_device import make_project, open_session
    from cortex_m_support import require_qemu, require_toolchain

    require_toolchain()
    require_qemu()
    syn = dspnet2(3)
    mlf = _compile(syn.model, syn.name, M4, tmp_path_factory)
    handler = make_project(mlf, tmp_path_factory.mktemp("dspnet2_qemu") / "proj", "mps2_an386")
    rng = np.random.default_rng(5)
    ref = Tflm(syn.model)
    with open_session(handler) as session:
        for _ in range(4):
            x = rng.integers(-128, 128, size=syn.input_shapes[0]).astype(np.int8)
            session.set_input(0, x.tobytes())
            session.run()
            for j, want in enumerate(ref(x)):
                got = np.frombuffer(session.get_output(j), np.int8)
                err = f"output #{j} {syn.output_names[j]}"
                np.testing.assert_array_equal(got, want.reshape(-1), err_msg=err)
