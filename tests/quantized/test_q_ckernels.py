"""The DSP C kernels (compiler/quantized/ckernels.py): exact requantisation, and bit-exact layers of many
shapes against TFLite Micro, built for the host (portable intrinsic twins) and under QEMU on mps2_an386
(real SMLAD/SXTB16)."""

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

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "compiler"))
from compiler_harness import build, extract  # noqa: E402

pytestmark = pytest.mark.usefixtures("tvm_available")
M4 = "c -mcpu=cortex-m4"


def dspnet(seed: int) -> Synthetic:
    """int8 in, every conv/depthwise shape class the C kernels specialise: one input channel with a tall
    strided kernel, K not a multiple of 4, odd output channels, channel counts not a multiple of 4,
    strided/dilated/padded depthwise, per-tensor and per-channel requantisation, fused activations."""
    net = _Net(seed)
    shape = (1, 17, 11, 1)
    x = net.act("input", shape)
    y = net.conv(x, 7, (5, 3), per_channel=True, padding="SAME", stride=(2, 2), activation="RELU")
    y = net.depthwise(y, (3, 3), 1, per_channel=False, padding="SAME", stride=(1, 1))
    y = net.conv(y, 10, (1, 1), per_channel=False, padding="VALID", activation="RELU6")
    y = net.depthwise(y, (3, 3), 1, per_channel=True, padding="SAME", stride=(2, 2))
    y = net.depthwise(y, (2, 3), 1, per_channel=True, padding="VALID", dilation=(2, 1))
    y = net.conv(y, 9, (2, 2), per_channel=True, padding="SAME", stride=(1, 2))
    y = net.conv(y, 16, (1, 1), per_channel=True, padding="VALID", stride=(2, 1))
    model = net.b.build([x], net.outputs)
    return Synthetic(f"dspnet{seed}", model, ["int8"], [shape], net.output_names)


def _requant_program(tmp: Path) -> Path:
    from tvmc_micro.compiler.quantized.ckernels import PRELUDE

    src = tmp / "rq.c"
    src.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        + PRELUDE
        + """
int main(void) {
  long long acc, mult, left, right;
  while (scanf("%lld %lld %lld %lld", &acc, &mult, &left, &right) == 4)
    printf("%d\\n", (int)tvmc_rq((int32_t)acc, (int32_t)mult, (int32_t)left, (int32_t)right));
  return 0;
}
"""
    )
    exe = tmp / "rq"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wno-unused-function",
            str(src),
            "-o",
            str(exe),
        ],
        check=True,
    )
    return exe


def test_one_shift_requant_equals_tflite(tmp_path: Path) -> None:
    """tvmc_rq (one 64-bit multiply-add, shifts) == SRDHM + RoundingDivideByPOT, on ties, signs, extremes."""
    from tvmc_micro.compiler.quantized import fixedpoint as fp

    rng = np.random.default_rng(5)
    cases: list[tuple[int, int, int]] = []
    edges = [
        0,
        1,
        -1,
        2,
        -2,
        3,
        -3,
        (1 << 31) - 1,
        -(1 << 31),
        -(1 << 31) + 1,
        1 << 30,
        -(1 << 30),
        12345,
        -12345,
    ]
    mults = [0, 1 << 30, (1 << 31) - 1, 1518500250, 1073741825, 2147483646]
    for shift in range(-31, 8):
        for m in mults:
            for a in edges:
                cases.append((a, m, shift))
        # ties of the final rounding: accumulators that land exactly on .5 after the high multiply
        for k in range(-6, 7):
            if shift < 0:
                cases.append(((2 * k + 1) << (-shift - 1), 1 << 30, shift))
                cases.append((((2 * k + 1) << (-shift - 1)) * 2, 1 << 30, shift))
    for _ in range(20000):
        a = int(rng.integers(-(1 << 31), 1 << 31))
        if rng.random() < 0.5:
            a = int(rng.integers(-(1 << 20), 1 << 20))
        cases.append((a, int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(-31, 4))))
    exe = _requant_program(tmp_path)
    text = "\n".join(f"{a} {m} {max(s, 0)} {max(-s, 0)}" for a, m, s in cases)
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == len(cases)
    bad = [
        (a, m, s, int(got), fp.multiply_by_quantized_multiplier(a, m, s))
        for (a, m, s), got in zip(cases, out, strict=True)
        if int(got) != fp.multiply_by_quantized_multiplier(a, m, s)
    ]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"


def test_one_smlal_requant_equals_tflite(tmp_path: Path) -> None:
    """tvmc_rqz (the fast epilogue) == MultiplyByQuantizedMultiplier + zero point over its whole domain:
    right shifts 2..22, canonical multipliers (0 and [2^30, 2^31)), every output zero point sign, extreme
    accumulators and exact ties of both roundings, where its sign shortcut [acc < 0] must hold."""
    from tvmc_micro.compiler.quantized import fixedpoint as fp
    from tvmc_micro.compiler.quantized.ckernels import PRELUDE

    rng = np.random.default_rng(11)
    edges = [
        0,
        1,
        -1,
        2,
        -2,
        3,
        -3,
        (1 << 31) - 1,
        -(1 << 31),
        -(1 << 31) + 1,
        1 << 30,
        -(1 << 30),
        4097,
        -4097,
    ]
    mults = [0, 1 << 30, (1 << 30) + 1, (1 << 31) - 1, 1518500250, 2147483646]
    cases: list[tuple[int, int, int, int]] = []
    for e in range(2, 23):
        for zp in (-128, -1, 0, 5, 127):
            cases += [(a, m, e, zp) for m in mults for a in edges]
            for k in range(-8, 9):  # acc * 2^30 / 2^31 lands on .5 at the final division (ties of RDBP)
                cases.append(((2 * k + 1) << (e - 1), 1 << 30, e, zp))
                cases.append((((2 * k + 1) << (e - 1)) * 2, 1 << 30, e, zp))
                cases.append((2 * k + 1, 1 << 30, e, zp))  # ties of the high multiply itself
    for _ in range(30000):
        a = (
            int(rng.integers(-(1 << 31), 1 << 31))
            if rng.random() < 0.3
            else int(rng.integers(-(1 << 22), 1 << 22))
        )
        cases.append(
            (a, int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(2, 23)), int(rng.integers(-128, 128)))
        )
    src = tmp_path / "rqz.c"
    src.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        + PRELUDE
        + """
int main(void) {
  long long acc, mult, e, zp;
  while (scanf("%lld %lld %lld %lld", &acc, &mult, &e, &zp) == 4) {
    int32_t khi = (int32_t)((1u << (e - 2)) + ((uint32_t)zp << (e - 1)));
    printf("%d\\n", (int)tvmc_rqz((int32_t)acc, (int32_t)mult, khi, (int32_t)(e - 1)));
  }
  return 0;
}
"""
    )
    exe = tmp_path / "rqz"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function", "-fsanitize=undefined"]
    subprocess.run(["gcc", *flags, "-fno-sanitize-recover=undefined", str(src), "-o", str(exe)], check=True)
    text = "\n".join(f"{a} {m} {e} {zp}" for a, m, e, zp in cases)
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == len(cases)
    bad = [
        (a, m, e, zp, int(got))
        for (a, m, e, zp), got in zip(cases, out, strict=True)
        if int(got) != fp.multiply_by_quantized_multiplier(a, m, -e) + zp
    ]
    assert not bad, f"{len(bad)} mismatches, first: {bad[:5]}"


_MLF: dict[tuple[str, str], Path] = {}


def _compile(model: bytes, name: str, target: str, tmp_factory: pytest.TempPathFactory) -> Path:
    from tvmc_micro.compiler import compile_model

    key = (name, target)
    if key not in _MLF:
        d = tmp_factory.mktemp(name)
        (d / f"{name}.tflite").write_bytes(model)
        compile_model(d / f"{name}.tflite", d / "m.tar", target=target)
        _MLF[key] = d / "m.tar"
    return _MLF[key]


def _kernel_source(mlf: Path) -> str:
    import tarfile

    with tarfile.open(mlf) as tar:
        names = [n for n in tar.getnames() if n.endswith("_lib0.c")]
        f = tar.extractfile(names[0])
        assert f is not None
        return f.read().decode()


def _expanded(source: str) -> str:
    """A generated kernel's source after the preprocessor (host gcc -E): the code its template parameters
    select, to check which variant a spec chose."""
    from tvmc_micro.compiler.quantized.ckernels import PRELUDE

    marker = "int tvmc_expanded_marker;"
    text = "#include <stdint.h>\n" + PRELUDE + "\n" + marker + "\n" + source
    out = subprocess.run(
        ["gcc", "-std=c99", "-E", "-P", "-x", "c", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split(marker, 1)[1]


def _syn_models() -> dict[str, Any]:
    # (convnet's float edges take the QDQ path through tvmc compile, so these int8-in nets are used.)
    return {f"dspnet{seed}": (lambda seed=seed: dspnet(seed)) for seed in (41, 43)}


@pytest.mark.parametrize("name", sorted(_syn_models()))
def test_dsp_kernels_bit_exact_on_host(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    syn: Synthetic = _syn_models()[name]()
    mlf = _compile(syn.model, syn.name, M4, tmp_path_factory)
    src = _kernel_source(mlf)
    assert "tvmc_smlad(" in src, "no DSP kernel was generated for a cortex-m4 target"
    work = tmp_path_factory.mktemp(f"{name}_host")
    built = build(extract(mlf, work / "mlf"))
    rng = np.random.default_rng(7)
    samples = [
        [random_input(rng, d, s) for d, s in zip(syn.input_dtypes, syn.input_shapes, strict=True)]
        for _ in range(40)
    ]
    ref = Tflm(syn.model)
    for sample, got in zip(samples, built.run(samples, work), strict=True):
        for j, (r, o) in enumerate(zip(ref(*sample), got, strict=True)):
            np.testing.assert_array_equal(o.reshape(r.shape), r, err_msg=f"output #{j} {syn.output_names[j]}")


def test_portable_target_keeps_tir_kernels(tmp_path_factory: pytest.TempPathFactory) -> None:
    """cortex-m3 (no DSP) and host C get no intrinsics kernels."""
    syn = dspnet(41)
    for target in ("c", "c -mcpu=cortex-m3"):
        assert "tvmc_smlad(" not in _kernel_source(_compile(syn.model, syn.name, target, tmp_path_factory))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["dspnet", "kws"])
def test_dsp_kernels_bit_exact_under_qemu(
    which: str, tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> None:
    """The same kernels with real SMLAD/SXTB16/SSAT on QEMU mps2_an386 (Cortex-M4), equal to TFLite Micro."""
    sys.path.insert(0, str(REPO / "tests" / "templates" / "cortex_m"))
    from cortex_m_device import make_project, open_session
    from cortex_m_support import require_qemu, require_toolchain

    require_toolchain()
    require_qemu()
    if which == "kws":
        model = (models_dir / "kws_ref_model.tflite").read_bytes()
        in_shape, n_out = (1, 49, 10, 1), 1
    else:
        syn = dspnet(41)
        model, in_shape, n_out = syn.model, syn.input_shapes[0], len(syn.output_names)
    mlf = _compile(model, which, M4, tmp_path_factory)
    handler = make_project(mlf, tmp_path_factory.mktemp(f"{which}_qemu") / "proj", "mps2_an386")
    rng = np.random.default_rng(3)
    samples = [rng.integers(-128, 128, size=in_shape).astype(np.int8) for _ in range(6)]
    ref = Tflm(model)
    with open_session(handler) as session:
        for x in samples:
            session.set_input(0, x.tobytes())
            session.run()
            want = ref(x)
            for j in range(n_out):
                got = np.frombuffer(session.get_output(j), np.int8)
                np.testing.assert_array_equal(got, want[j].reshape(-1), err_msg=f"{which} output #{j}")


# ---- generated kernels straight from specs: every requantisation mode, on the host, against numpy ----


def _spec(
    kind: str,
    geom: dict[str, Any],
    mults: list[int],
    shifts: list[int],
    zp: tuple[int, int],
    act: tuple[int, int],
) -> dict[str, Any]:
    per_channel = len(mults) > 1
    rq = {
        "per_channel": per_channel,
        "has_left": any(s > 0 for s in shifts),
        "mult": 0 if per_channel else mults[0],
        "left": 0 if per_channel else max(shifts[0], 0),
        "right": 0 if per_channel else max(-shifts[0], 0),
    }
    return {"kind": kind, **geom, "in_zp": zp[0], "out_zp": zp[1], "requant": rq, "act_range": list(act)}


def _reference(
    spec: dict[str, Any], x: np.ndarray, w: np.ndarray, b: np.ndarray, mults: list[int], shifts: list[int]
) -> np.ndarray:
    from tvmc_micro.compiler.quantized import fixedpoint as fp

    _, ih, iw, ic = spec["data_shape"]
    _, oh, ow, oc = spec["out_shape"]
    kh, kw = spec["weight_shape"][1:3]
    (sh, sw), (dh, dw), (pt, pl) = spec["stride"], spec["dilation"], spec["pad"]
    pad = np.full((ih + 2 * kh * dh, iw + 2 * kw * dw, ic), spec["in_zp"], np.int64)
    pad[kh * dh : kh * dh + ih, kw * dw : kw * dw + iw] = x[0]
    out = np.empty((oh, ow, oc), np.int64)
    lo, hi = spec["act_range"]
    for oy in range(oh):
        for ox in range(ow):
            ys = oy * sh - pt + kh * dh + np.arange(kh) * dh
            xs = ox * sw - pl + kw * dw + np.arange(kw) * dw
            patch = pad[np.ix_(ys, xs)]  # kh, kw, ic
            for c in range(oc):
                if spec["kind"] == "depthwise":
                    acc = int((patch[:, :, c] * w[0, :, :, c]).sum())
                else:
                    acc = int((patch * w[c]).sum())
                m, s = (mults[c], shifts[c]) if len(mults) > 1 else (mults[0], shifts[0])
                v = fp.multiply_by_quantized_multiplier(acc + int(b[c]), m, s) + spec["out_zp"]
                out[oy, ox, c] = min(max(v, lo), hi)
    return out.astype(np.int8)


def _c_array(ctype: str, name: str, a: np.ndarray) -> str:
    return f"static {ctype} {name}[{max(a.size, 1)}] = {{{', '.join(str(int(v)) for v in a.reshape(-1))}}};"


GEOMS = {
    "conv": {
        "data_shape": [1, 6, 5, 3],
        "weight_shape": [5, 3, 2, 3],
        "out_shape": [1, 3, 3, 5],
        "stride": [2, 2],
        "dilation": [1, 1],
        "pad": [1, 0],
    },
    "depthwise": {
        "data_shape": [1, 5, 6, 6],
        "weight_shape": [1, 3, 3, 6],
        "out_shape": [1, 5, 3, 6],
        "stride": [1, 2],
        "dilation": [1, 1],
        "pad": [1, 1],
    },
}


@pytest.mark.parametrize(
    "case",
    [
        "table",  # per-channel, every shift in tvmc_rqz's domain
        "table_shift0",  # one channel with right shift 0: the call returns through the exact kernel
        "table_shift1",
        "table_shift23",
        "table_small_mult",  # a non-canonical multiplier (< 2^30) also takes the exact kernel
        "left",  # per-channel with a left shift: exact epilogue everywhere
        "fixed",  # per-tensor in the domain
        "fixed_relu",  # and with a clamp tighter than int8
        "tensor_shift0",
        "tensor_shift1",
        "tensor_left",
    ],
)
@pytest.mark.parametrize("kind", ["conv", "depthwise"])
def test_generated_kernel_every_requant_mode(kind: str, case: str, tmp_path: Path) -> None:
    from tvmc_micro.compiler.quantized import ckernels

    rng = np.random.default_rng(zlib.crc32(f"{kind}/{case}".encode()))
    geom = GEOMS[kind]
    oc = geom["out_shape"][3]
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=oc)]
    shifts = [int(v) for v in rng.integers(-9, -2, size=oc)]
    act = (-128, 127)
    if case == "table_shift0":
        shifts[2] = 0
    elif case == "table_shift1":
        shifts[0] = -1
    elif case == "table_shift23":
        shifts[oc - 1] = -23
    elif case == "table_small_mult":
        mults[1] = 1 << 29
    elif case == "left":
        shifts[1] = 2
    elif case.startswith(("fixed", "tensor")):
        mults, shifts = mults[:1], shifts[:1]
        shifts[0] = {"tensor_shift0": 0, "tensor_shift1": -1, "tensor_left": 1}.get(case, shifts[0])
        if case == "fixed_relu":
            act = (-20, 100)
    spec = _spec("conv2d" if kind == "conv" else kind, geom, mults, shifts, (-7, 5), act)
    expected_mode = {
        "left": "exact",
        "tensor_shift0": "exact",
        "tensor_shift1": "exact",
        "tensor_left": "exact",
    }
    assert ckernels._rq_mode(spec) == expected_mode.get(
        case, "table" if case.startswith("table") else "fixed"
    )

    _check_generated(spec, mults, shifts, rng, tmp_path)


def _check_generated(
    spec: dict[str, Any],
    mults: list[int],
    shifts: list[int],
    rng: np.random.Generator,
    tmp_path: Path,
    in_place: bool = False,
) -> None:
    """Generate the kernel for `spec`, build it for the host under UBSan with random data, and compare every
    output with the numpy reference. `in_place`: run it the way the planner places a declared in-place
    pair, the output starting `lead` bytes before the input inside one buffer."""
    from tvmc_micro.compiler.quantized import ckernels

    geom = spec
    oc = spec["out_shape"][3]
    x = rng.integers(-128, 128, size=geom["data_shape"]).astype(np.int8)
    w = rng.integers(-127, 128, size=geom["weight_shape"]).astype(np.int8)
    b = rng.integers(-3000, 3000, size=oc).astype(np.int32)
    # Accumulators of a few thousand with shifts of 3..9: outputs spread over int8 rather than all clamped.
    want = _reference(spec, x, w, b, mults, shifts)

    per_channel = len(mults) > 1
    tables: list[tuple[str, str, np.ndarray]] = []
    if per_channel:
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
    assert gen is not None
    if gen.rq_layout is not None:  # the per-channel tables precomputed, as the driver lays them out
        i, layout = gen.rq_layout
        laid = layout(np.asarray(params[i][2]))
        params[i] = (str(laid.dtype), params[i][1], laid.reshape(-1))
        assert gen.param_dtypes[i] == str(laid.dtype)
    ctype = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t"}
    decls = [_c_array(ctype[d], n, a) for d, n, a in params]
    args = [n for _, n, _ in params]
    out_ref = "out"
    if in_place:
        assert len(gen.inplace) == 1, "the kernel declares no in-place pair"
        out_i, in_i, lead = gen.inplace[0]
        assert (args[out_i], args[in_i]) == ("out", "data") and lead % 16 == 0
        shared = lead + max(x.size, want.size)
        decls.append(f"static int8_t shared[{shared}];")
        args[in_i], args[out_i] = f"shared + {lead}", "shared"
        out_ref = "shared"
        copy_in = f"  memcpy(shared + {lead}, data, {x.size});\n  (void)out;\n"
    else:
        copy_in = ""
    if gen.workspace is not None:
        nbytes, dtype = gen.workspace
        decls.append(f"static {ctype[dtype]} wsbuf[{nbytes}] __attribute__((aligned(16)));")
        args.append("wsbuf")
    src = tmp_path / "k.c"
    src.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        + ckernels.PRELUDE
        + gen.source
        + "\n".join(decls)
        + f"\nint main(void) {{\n  int i;\n{copy_in}  kern({', '.join(args)});\n"
        + f'  for (i = 0; i < {want.size}; ++i) printf("%d\\n", {out_ref}[i]);\n  return 0;\n}}\n'
    )
    exe = tmp_path / "k"
    flags = [
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-unused-function",
        "-fsanitize=undefined",
        "-fno-sanitize-recover=undefined",
    ]
    subprocess.run(["gcc", *flags, str(src), "-o", str(exe)], check=True)
    got = np.array(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split(), int)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


# Conv: output pixel counts 3k, 3k+1, 3k+2 (the 3-pixel blocks' tail), odd channel counts, K not a multiple
# of 4, 1x1 direct, rows partly/wholly outside the image on every side, dilation. Depthwise: even and odd
# pixel counts (2-pixel blocks), channels not a multiple of 4.
BLOCKING_GEOMS = {
    "conv_1x1_9px": ("conv2d", [1, 3, 3, 8], [6, 1, 1, 8], [1, 3, 3, 6], [1, 1], [1, 1], [0, 0]),
    "conv_1x1_10px": ("conv2d", [1, 2, 5, 12], [4, 1, 1, 12], [1, 2, 5, 4], [1, 1], [1, 1], [0, 0]),
    "conv_1x1_11px_oddc": ("conv2d", [1, 1, 11, 5], [3, 1, 1, 5], [1, 1, 11, 3], [1, 1], [1, 1], [0, 0]),
    "conv_tall_1ch": ("conv2d", [1, 9, 6, 1], [8, 5, 4, 1], [1, 5, 3, 8], [2, 2], [1, 1], [2, 1]),
    "conv_wide_pad": ("conv2d", [1, 4, 5, 2], [5, 3, 3, 2], [1, 4, 5, 5], [1, 1], [1, 1], [1, 1]),
    "conv_dilated": ("conv2d", [1, 7, 7, 3], [2, 2, 3, 3], [1, 4, 4, 2], [1, 1], [2, 2], [0, 1]),
    "dw_even": ("depthwise", [1, 4, 4, 8], [1, 3, 3, 8], [1, 4, 4, 8], [1, 1], [1, 1], [1, 1]),
    "dw_odd_c7": ("depthwise", [1, 5, 3, 7], [1, 3, 3, 7], [1, 5, 3, 7], [1, 1], [1, 1], [1, 1]),
    "dw_stride_odd": ("depthwise", [1, 6, 6, 4], [1, 3, 2, 4], [1, 3, 3, 4], [2, 2], [1, 1], [1, 0]),
}


@pytest.mark.parametrize("name", sorted(BLOCKING_GEOMS))
def test_generated_kernel_blocking_tails(name: str, tmp_path: Path) -> None:
    kind, data, weight, out, stride, dilation, pad = BLOCKING_GEOMS[name]
    geom = {
        "data_shape": data,
        "weight_shape": weight,
        "out_shape": out,
        "stride": stride,
        "dilation": dilation,
        "pad": pad,
    }
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    oc = out[3]
    for per_channel in (True, False):
        n = oc if per_channel else 1
        mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=n)]
        shifts = [int(v) for v in rng.integers(-9, -2, size=n)]
        spec = _spec(kind, geom, mults, shifts, (-3, 9), (-128, 127))
        work = tmp_path / ("per_channel" if per_channel else "per_tensor")
        work.mkdir()
        _check_generated(spec, mults, shifts, rng, work)


# In place, as the planner places a declared pair: 1x1 stride-1 convs over their input (oc <= ic), depthwise
# layers with their output `lead` bytes before their input. Padding on every side, strides, dilation, odd
# and non-multiple-of-4 channels, 2-pixel block tails; per-channel "table" mode with one channel out of
# tvmc_rqz's domain so the call returns through the exact fallback, which must be in-place safe too.
IN_PLACE_GEOMS = {
    "conv_1x1_same_c": ("conv2d", [1, 5, 5, 8], [8, 1, 1, 8], [1, 5, 5, 8], [1, 1], [1, 1], [0, 0]),
    "conv_1x1_fewer_c": ("conv2d", [1, 3, 7, 12], [5, 1, 1, 12], [1, 3, 7, 5], [1, 1], [1, 1], [0, 0]),
    "dw_kws": ("depthwise", [1, 25, 5, 64], [1, 3, 3, 64], [1, 25, 5, 64], [1, 1], [1, 1], [1, 1]),
    "dw_odd_c7": ("depthwise", [1, 5, 3, 7], [1, 3, 3, 7], [1, 5, 3, 7], [1, 1], [1, 1], [1, 1]),
    "dw_stride2": ("depthwise", [1, 7, 6, 8], [1, 3, 3, 8], [1, 4, 3, 8], [2, 2], [1, 1], [1, 1]),
    "dw_dilated": ("depthwise", [1, 7, 7, 6], [1, 3, 3, 6], [1, 7, 7, 6], [1, 1], [2, 2], [2, 2]),
    "dw_5x5_pad2": ("depthwise", [1, 6, 9, 12], [1, 5, 5, 12], [1, 6, 9, 12], [1, 1], [1, 1], [2, 2]),
}


@pytest.mark.parametrize("mode", ["table", "table_fallback", "fixed"])
@pytest.mark.parametrize("name", sorted(IN_PLACE_GEOMS))
def test_generated_kernel_in_place(name: str, mode: str, tmp_path: Path) -> None:
    kind, data, weight, out, stride, dilation, pad = IN_PLACE_GEOMS[name]
    geom = {
        "data_shape": data,
        "weight_shape": weight,
        "out_shape": out,
        "stride": stride,
        "dilation": dilation,
        "pad": pad,
    }
    rng = np.random.default_rng(zlib.crc32(f"{name}/{mode}".encode()))
    n = 1 if mode == "fixed" else out[3]
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=n)]
    shifts = [int(v) for v in rng.integers(-9, -2, size=n)]
    if mode == "table_fallback":
        shifts[n // 2] = 0
    spec = _spec(kind, geom, mults, shifts, (-3, 9), (-128, 127))
    _check_generated(spec, mults, shifts, rng, tmp_path, in_place=True)


def test_depthwise_lead_is_the_trailing_distance() -> None:
    """A 3x3 pad-1 stride-1 layer reads at most one row and one pixel behind the pixel it writes, plus the
    second pixel of a block: (W + 1 + 1) * C bytes, rounded up to 16."""
    from tvmc_micro.compiler.quantized.ckernels import _depthwise_lead

    _, data, weight, out, stride, dilation, pad = IN_PLACE_GEOMS["dw_kws"]
    spec = {"data_shape": data, "weight_shape": weight, "out_shape": out, "stride": stride}
    spec.update({"dilation": dilation, "pad": pad})
    assert _depthwise_lead(spec) == (5 + 1 + 1) * 64
