"""More int8 operators (data movement, elementwise, TRANSPOSE_CONV ...), each a single-operator model built
with tflite_builder, bit-exact against TFLite Micro on random inputs, and each refusal named."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from qharness import Tflm, compile_host, with_outputs
from tflite_builder import ModelBuilder
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel, import_tflite_quantized

pytestmark = pytest.mark.usefixtures("tvm_available")

N_RANDOM = 20


def _inputs(rng: np.random.Generator, shapes: list[tuple[int, ...]], dtype: str = "int8") -> list[np.ndarray]:
    info = np.iinfo(dtype)
    return [rng.integers(int(info.min), int(info.max) + 1, size=s).astype(dtype) for s in shapes]


def assert_bit_exact(model: bytes, shapes: list[tuple[int, ...]], seed: int = 0, dtype: str = "int8") -> None:
    """N_RANDOM random inputs through TFLM and through our host build: every output byte equal."""
    ours, ref = compile_host(model, "more_ops"), Tflm(model)
    rng = np.random.default_rng(seed)
    for k in range(N_RANDOM):
        xs = _inputs(rng, shapes, dtype)
        for j, (r, o) in enumerate(zip(ref(*xs), ours(*xs), strict=True)):
            assert r.shape == o.shape and r.dtype == o.dtype, (j, r.shape, o.shape, r.dtype, o.dtype)
            if not np.array_equal(r, o):
                diff = int(np.abs(r.astype(np.int64) - o.astype(np.int64)).max())
                raise AssertionError(f"sample {k} output {j}: differs from TFLite Micro by up to {diff} LSB")


def refused(model: bytes, match: str) -> None:
    with pytest.raises(UnsupportedQuantizedModel, match=match):
        import_tflite_quantized(model, "refused")


def single_op(
    opname: str,
    in_shapes: list[tuple[int, ...]],
    out_shapes: list[tuple[int, ...]],
    consts: Callable[[ModelBuilder], list[int]] | None = None,
    options: object = None,
    kind: str | None = None,
    in_q: list[tuple[float, int]] | None = None,
    out_q: list[tuple[float, int]] | None = None,
    dtype: str = "int8",
    const_first: bool = False,
    version: int = 1,
) -> bytes:
    """One operator: activations first (or after the constants with `const_first`), then constants."""
    b = ModelBuilder()
    in_q = in_q or [(0.05, 3)] * len(in_shapes)
    out_q = out_q or [in_q[0]] * len(out_shapes)
    xs = [
        b.tensor(f"x{i}", list(s), dtype, scale=q[0], zero_point=q[1])
        for i, (s, q) in enumerate(zip(in_shapes, in_q, strict=True))
    ]
    cs = consts(b) if consts else []
    ys = [
        b.tensor(f"y{i}", list(s), dtype, scale=q[0], zero_point=q[1])
        for i, (s, q) in enumerate(zip(out_shapes, out_q, strict=True))
    ]
    b.op(opname, (cs + xs) if const_first else (xs + cs), ys, options, kind, version)
    return b.build(xs, ys)


# --- TRANSPOSE -------------------------------------------------------------------------------------------


def _transpose(shape: tuple[int, ...], perm: list[int], dtype: str = "int8") -> bytes:
    out = tuple(shape[p] for p in perm)
    return single_op(
        "TRANSPOSE",
        [shape],
        [out],
        lambda b: [b.const_int32("perm", perm)],
        schema.TransposeOptionsT(),
        dtype=dtype,
    )


@pytest.mark.parametrize(
    "shape,perm",
    [
        ((1, 3, 6, 5), [0, 2, 3, 1]),
        ((2, 3, 4), [2, 0, 1]),
        ((4, 7), [1, 0]),
        ((2, 3, 1, 4, 5), [4, 2, 0, 3, 1]),
        ((1, 5, 1, 6), [2, 0, 1, 3]),  # only unit dimensions move: a view
    ],
)
def test_transpose(shape: tuple[int, ...], perm: list[int]) -> None:
    assert_bit_exact(_transpose(shape, perm), [shape])


def test_transpose_int16() -> None:
    assert_bit_exact(_transpose((3, 4, 5), [1, 2, 0], "int16"), [(3, 4, 5)], dtype="int16")


def test_data_movement_int16() -> None:
    """The copies are dtype-generic: int16 (zero point 0, as TFLite's 16x8 scheme) takes the same kernels."""
    q = [(0.001, 0)]
    sl = single_op(
        "SLICE",
        [(4, 6)],
        [(2, 3)],
        lambda b: [b.const_int32("begin", [1, 2]), b.const_int32("size", [2, 3])],
        in_q=q,
        dtype="int16",
    )
    assert_bit_exact(sl, [(4, 6)], dtype="int16")
    o = schema.UnpackOptionsT()
    o.num, o.axis = 3, 1
    up = single_op(
        "UNPACK", [(2, 3, 4)], [(2, 4)] * 3, options=o, kind="UnpackOptions", in_q=q, dtype="int16"
    )
    assert_bit_exact(up, [(2, 3, 4)], dtype="int16")
    d = schema.SpaceToDepthOptionsT()
    d.blockSize = 2
    s2d = single_op(
        "SPACE_TO_DEPTH",
        [(1, 4, 4, 2)],
        [(1, 2, 2, 8)],
        options=d,
        kind="SpaceToDepthOptions",
        in_q=q,
        dtype="int16",
    )
    refused(s2d, r"#0 SPACE_TO_DEPTH: input is int16 per-tensor .* supports int8 only")


def test_transpose_refusals() -> None:
    refused(_transpose((1, 2, 1, 2, 1, 2), [5, 4, 3, 2, 1, 0]), r"#0 TRANSPOSE: .*ranks 1 to 5")
    b = ModelBuilder()
    x = b.tensor("x", [2, 3], scale=0.1, zero_point=0)
    y = b.tensor("y", [3, 2], scale=0.2, zero_point=0)
    b.op("TRANSPOSE", [x, b.const_int32("perm", [1, 0])], [y])
    refused(b.build([x], [y]), r"TRANSPOSE: input int8 per-tensor .* quantized alike")


# --- SUB ----------------------------------------------------------------------------------------------


def _sub(
    a: tuple[int, ...], b: tuple[int, ...], q: list[tuple[float, int]], activation: str = "NONE"
) -> bytes:
    o = schema.SubOptionsT()
    o.fusedActivationFunction = getattr(schema.ActivationFunctionType, activation)
    out = tuple(np.broadcast_shapes(a, b))
    return single_op("SUB", [a, b], [out], options=o, kind="SubOptions", in_q=q[:2], out_q=q[2:])


@pytest.mark.parametrize(
    "a,b,q,act",
    [
        ((1, 4, 4, 3), (1, 4, 4, 3), [(0.05, 3), (0.07, -5), (0.1, 2)], "NONE"),
        ((2, 3, 5), (5,), [(0.013, -128), (0.2, 10), (0.07, -3)], "RELU"),
        ((1, 1, 6), (4, 1), [(0.3, 0), (0.3, 0), (0.011, 7)], "RELU6"),
        ((1, 8), (1, 8), [(0.0123, 100), (0.0456, -100), (0.00789, 0)], "RELU_N1_TO_1"),
    ],
)
def test_sub(a: tuple[int, ...], b: tuple[int, ...], q: list[tuple[float, int]], act: str) -> None:
    assert_bit_exact(_sub(a, b, q, act), [a, b], seed=len(a))


def test_sub_refuses_mismatched_broadcast() -> None:
    b = ModelBuilder()
    x = b.tensor("x", [2, 3], scale=0.1, zero_point=0)
    z = b.tensor("z", [4, 3], scale=0.1, zero_point=0)
    y = b.tensor("y", [2, 3], scale=0.2, zero_point=0)
    b.op("SUB", [x, z], [y])
    refused(b.build([x, z], [y]), r"#0 SUB: input shapes \[\[2, 3\], \[4, 3\]\] do not broadcast")


# --- STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, UNPACK, PACK ----------------------------------------------------


def _strided_slice(
    shape: tuple[int, ...],
    out: tuple[int, ...],
    begin: list[int],
    end: list[int],
    strides: list[int],
    masks: tuple[int, int, int] = (0, 0, 0),
    ellipsis: int = 0,
) -> bytes:
    o = schema.StridedSliceOptionsT()
    o.beginMask, o.endMask, o.shrinkAxisMask = masks
    o.ellipsisMask = ellipsis

    def consts(b: ModelBuilder) -> list[int]:
        return [b.const_int32("begin", begin), b.const_int32("end", end), b.const_int32("strides", strides)]

    return single_op("STRIDED_SLICE", [shape], [out], consts, o, "StridedSliceOptions")


@pytest.mark.parametrize(
    "shape,out,begin,end,strides,masks",
    [
        (
            (1, 8, 10, 2),
            (1, 6, 10, 2),
            [0, 2, 0, 0],
            [1, 8, 10, 2],
            [1, 1, 1, 1],
            (13, 15, 0),
        ),  # seanet style
        ((1, 3, 12, 4), (1, 1, 12, 4), [0, 1, 0, 0], [1, 2, 12, 4], [1, 1, 1, 1], (13, 13, 0)),
        ((6, 9), (2, 3), [1, -2], [5, 0], [2, -3], (0, 0, 0)),  # negative index and stride
        ((4, 5, 6), (5,), [2, 0, -1], [3, 5, 6], [1, 1, 1], (2, 2, 5)),  # shrink axes 0 and 2
        ((3, 4), (3, 4), [0, 0], [3, 4], [1, 1], (0, 0, 0)),  # everything: a view
        ((7,), (3,), [-1], [0], [-2], (1, 0, 0)),  # begin mask with a negative stride
    ],
)
def test_strided_slice(shape, out, begin, end, strides, masks) -> None:  # type: ignore[no-untyped-def]
    assert_bit_exact(_strided_slice(shape, out, begin, end, strides, masks), [shape])


def test_strided_slice_refusals() -> None:
    refused(
        _strided_slice((4, 4), (4, 2), [0, 0], [4, 2], [1, 1], ellipsis=1),
        r"#0 STRIDED_SLICE: EllipsisMask is set; TFLite Micro ignores it",
    )
    refused(
        _strided_slice((4, 4), (4, 3), [0, 0], [4, 2], [1, 1]), r"slice has shape \[4, 2\] but the output"
    )


def _slice(shape: tuple[int, ...], begin: list[int], size: list[int]) -> bytes:
    out = tuple(d - b if n == -1 else n for d, b, n in zip(shape, begin, size, strict=True))

    def consts(b: ModelBuilder) -> list[int]:
        return [b.const_int32("begin", begin), b.const_int32("size", size)]

    return single_op("SLICE", [shape], [out], consts, schema.SliceOptionsT(), "SliceOptions")


@pytest.mark.parametrize(
    "shape,begin,size",
    [
        ((1, 5, 6, 3), [0, 1, 2, 0], [1, 3, -1, 2]),
        ((9,), [4], [3]),
        ((2, 3, 4, 5, 6), [1, 0, 1, 2, 3], [1, 2, 2, 3, 3]),
    ],
)
def test_slice(shape: tuple[int, ...], begin: list[int], size: list[int]) -> None:
    assert_bit_exact(_slice(shape, begin, size), [shape])


def test_slice_refuses_out_of_range() -> None:
    b = ModelBuilder()
    x = b.tensor("x", [4, 4], scale=0.1, zero_point=0)
    y = b.tensor("y", [2, 2], scale=0.1, zero_point=0)
    b.op("SLICE", [x, b.const_int32("begin", [3, 0]), b.const_int32("size", [2, 2])], [y])
    refused(b.build([x], [y]), r"#0 SLICE: slice begin \[3, 0\] with output shape \[2, 2\] leaves the input")


@pytest.mark.parametrize("shape,axis,n", [((1, 4, 6, 3), 2, 3), ((8, 5), -2, 2), ((2, 3, 4), 2, 1)])
def test_split(shape: tuple[int, ...], axis: int, n: int) -> None:
    a = axis % len(shape)
    out = tuple(d // n if i == a else d for i, d in enumerate(shape))
    o = schema.SplitOptionsT()
    o.numSplits = n
    model = single_op(
        "SPLIT",
        [shape],
        [out] * n,
        lambda b: [b.const_int32("axis", [axis])],
        o,
        "SplitOptions",
        const_first=True,
    )
    assert_bit_exact(model, [shape])


def test_split_v() -> None:
    shape, sizes = (2, 10, 3), [3, 5, 2]
    o = schema.SplitVOptionsT()
    o.numSplits = 3
    outs = [(2, s, 3) for s in sizes]
    model = single_op(
        "SPLIT_V",
        [shape],
        outs,
        lambda b: [b.const_int32("sizes", sizes), b.const_int32("axis", [1])],
        o,
        "SplitVOptions",
    )
    assert_bit_exact(model, [shape])


def test_split_refuses_run_time_axis() -> None:
    b = ModelBuilder()
    axis = b.tensor("axis", [1], "int32")
    x = b.tensor("x", [4, 4], scale=0.1, zero_point=0)
    ys = [b.tensor(f"y{i}", [2, 4], scale=0.1, zero_point=0) for i in range(2)]
    b.op("SPLIT", [axis, x], ys)
    refused(b.build([axis, x], ys), r"#0 SPLIT: the split axis is computed at run time")


@pytest.mark.parametrize("shape,axis", [((3, 4, 5), 1), ((2, 6), 0), ((1, 3, 2), -1)])
def test_unpack(shape: tuple[int, ...], axis: int) -> None:
    a = axis % len(shape)
    out = tuple(d for i, d in enumerate(shape) if i != a)
    o = schema.UnpackOptionsT()
    o.num, o.axis = shape[a], axis
    assert_bit_exact(single_op("UNPACK", [shape], [out] * shape[a], options=o, kind="UnpackOptions"), [shape])


@pytest.mark.parametrize("shape,n,axis", [((3, 4), 3, 1), ((5,), 2, 0), ((2, 3, 2), 4, -1)])
def test_pack(shape: tuple[int, ...], n: int, axis: int) -> None:
    rank = len(shape) + 1
    a = axis % rank
    out = (*shape[:a], n, *shape[a:])
    o = schema.PackOptionsT()
    o.valuesCount, o.axis = n, axis
    assert_bit_exact(single_op("PACK", [shape] * n, [out], options=o, kind="PackOptions"), [shape] * n)


def test_pack_refuses_mixed_quantisation() -> None:
    o = schema.PackOptionsT()
    o.valuesCount, o.axis = 2, 0
    model = single_op(
        "PACK", [(3,), (3,)], [(2, 3)], options=o, kind="PackOptions", in_q=[(0.1, 0), (0.2, 0)]
    )
    refused(
        model, r"#0 PACK: input int8 per-tensor \(scale 0.2, zero point 0\) and output .* quantized alike"
    )


# --- RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, HARD_SWISH (tables) ---------------------------------------------


def _unary(
    opname: str,
    shape: tuple[int, ...],
    q_in: tuple[float, int],
    q_out: tuple[float, int],
    options=None,
    kind=None,
) -> bytes:  # type: ignore[no-untyped-def]
    return single_op(opname, [shape], [shape], options=options, kind=kind, in_q=[q_in], out_q=[q_out])


_QS = [
    ((0.05, 3), (0.03, -20)),
    ((0.1, -128), (0.1, -128)),
    ((0.02, 60), (0.07, 10)),
    ((0.2, 0), (0.004, -5)),
]


@pytest.mark.parametrize("opname", ["RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH"])
@pytest.mark.parametrize("qs", range(len(_QS)))
def test_activation(opname: str, qs: int) -> None:
    q_in, q_out = _QS[qs]
    options, kind = None, None
    if opname == "RELU6":
        q_out = q_in
    if opname == "LEAKY_RELU":
        options, kind = schema.LeakyReluOptionsT(), "LeakyReluOptions"
        options.alpha = [0.2, 0.01, 0.3, 1.5][qs]
    if opname == "HARD_SWISH":
        q_out = (max(q_out[0], q_in[0] / 100), q_out[1])
    # Every int8 value once, then random ones: the whole table is compared.
    model = _unary(opname, (2, 128), q_in, q_out, options, kind)
    ours, ref = compile_host(model, "act"), Tflm(model)
    every = np.arange(-128, 128, dtype=np.int8).reshape(2, 128)
    np.testing.assert_array_equal(ours(every)[0], ref(every)[0])
    assert_bit_exact(model, [(2, 128)], seed=qs)


def test_hard_swish_tiny_output_multiplier() -> None:
    """Output exponent -16: gemmlowp's int16 RoundingDivideByPOT wraps its mask and rounds every product to
    +-1 (found by a random-parameter sweep against TFLM)."""
    model = _unary("HARD_SWISH", (2, 128), (0.0012682965025305748, 23), (0.9143238067626953, 81))
    every = np.arange(-128, 128, dtype=np.int8).reshape(2, 128)
    want = Tflm(model)(every)[0]
    assert set(np.unique(want)) == {80, 82}
    np.testing.assert_array_equal(compile_host(model, "hs")(every)[0], want)


def test_relu_n1_to_1_matches_litert() -> None:
    """TFLite Micro has no RELU_N1_TO_1 kernel; the reference is LiteRT's (TFLite's) int8 kernel."""
    from ai_edge_litert.interpreter import Interpreter

    for q_in, q_out in [((0.05, 3), (0.03, -20)), ((0.01, -10), (0.01, -10)), ((0.02, 60), (0.007, 10))]:
        model = _unary("RELU_N1_TO_1", (2, 128), q_in, q_out)
        interp = Interpreter(model_content=model)
        interp.allocate_tensors()
        every = np.arange(-128, 128, dtype=np.int8).reshape(2, 128)
        interp.set_tensor(interp.get_input_details()[0]["index"], every)
        interp.invoke()
        want = interp.get_tensor(interp.get_output_details()[0]["index"])
        np.testing.assert_array_equal(compile_host(model, "relu1")(every)[0], want)


def test_activation_refusals() -> None:
    refused(_unary("RELU6", (4,), (0.1, 0), (0.2, 0)), r"#0 RELU6: input and output quantization differ")
    o = schema.LeakyReluOptionsT()
    o.alpha = -0.5
    refused(
        _unary("LEAKY_RELU", (4,), (0.1, 0), (0.1, 0), o, "LeakyReluOptions"), r"#0 LEAKY_RELU: alpha -0.5"
    )
    refused(_unary("HARD_SWISH", (4,), (0.5, 0), (0.001, 0)), r"#0 HARD_SWISH: input scale / \(128 \* output")
    b = ModelBuilder()
    x = b.tensor("x", [4], "uint8", scale=0.1, zero_point=128)
    y = b.tensor("y", [4], "uint8", scale=0.1, zero_point=128)
    b.op("RELU", [x], [y])
    refused(b.build([x], [y]), r"#0 RELU: input 'x' is uint8 per-tensor .* needs int8 per-tensor")


# --- MAXIMUM / MINIMUM, RESIZE_NEAREST_NEIGHBOR -----------------------------------------------------------


@pytest.mark.parametrize("opname", ["MAXIMUM", "MINIMUM"])
@pytest.mark.parametrize("a,b", [((2, 3, 4), (2, 3, 4)), ((1, 5, 6), (6,)), ((4, 1), (1, 3))])
def test_maximum_minimum(opname: str, a: tuple[int, ...], b: tuple[int, ...]) -> None:
    out = tuple(np.broadcast_shapes(a, b))
    assert_bit_exact(single_op(opname, [a, b], [out]), [a, b])


def test_maximum_refuses_mixed_quantisation() -> None:
    model = single_op("MAXIMUM", [(3,), (3,)], [(3,)], in_q=[(0.1, 0), (0.2, 0)], out_q=[(0.1, 0)])
    refused(model, r"#0 MAXIMUM: input 'x1' is int8 per-tensor \(scale 0.2.*must match")


def _resize(shape: tuple[int, ...], size: tuple[int, int], align: bool, half: bool) -> bytes:
    o = schema.ResizeNearestNeighborOptionsT()
    o.alignCorners, o.halfPixelCenters = align, half
    out = (shape[0], *size, shape[3])
    return single_op(
        "RESIZE_NEAREST_NEIGHBOR",
        [shape],
        [out],
        lambda b: [b.const_int32("size", list(size))],
        o,
        "ResizeNearestNeighborOptions",
    )


@pytest.mark.parametrize(
    "shape,size,align,half",
    [
        ((1, 4, 5, 3), (8, 10), False, False),  # integer ratio: no tables
        ((1, 5, 7, 2), (9, 4), False, False),
        ((2, 5, 7, 2), (9, 13), True, False),
        ((1, 6, 4, 3), (10, 7), False, True),
        ((1, 3, 3, 1), (7, 5), True, True),
    ],
)
def test_resize_nearest(shape: tuple[int, ...], size: tuple[int, int], align: bool, half: bool) -> None:
    assert_bit_exact(_resize(shape, size, align, half), [shape])


def test_resize_nearest_refuses_run_time_size() -> None:
    b = ModelBuilder()
    x = b.tensor("x", [1, 2, 2, 1], scale=0.1, zero_point=0)
    size = b.tensor("size", [2], "int32")
    y = b.tensor("y", [1, 4, 4, 1], scale=0.1, zero_point=0)
    b.op("RESIZE_NEAREST_NEIGHBOR", [x, size], [y])
    refused(b.build([x, size], [y]), r"#0 RESIZE_NEAREST_NEIGHBOR: the output size is computed at run time")


# --- TRANSPOSE_CONV -------------------------------------------------------------------------------------


def _transpose_conv(
    in_shape: tuple[int, int, int, int],
    out_c: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: str,
    per_channel: bool,
    bias: bool,
    activation: str = "NONE",
    seed: int = 0,
) -> tuple[bytes, tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    n, h, w, c = in_shape
    if padding == "SAME":
        oh, ow = h * stride[0], w * stride[1]
    else:
        oh, ow = (h - 1) * stride[0] + kernel[0], (w - 1) * stride[1] + kernel[1]
    out_shape = (n, oh, ow, out_c)
    b = ModelBuilder()
    x = b.tensor("x", list(in_shape), scale=0.04, zero_point=-7)
    w_scales = [float(s) for s in rng.uniform(0.002, 0.02, out_c)] if per_channel else 0.01
    wt = b.tensor(
        "w",
        [out_c, *kernel, c],
        scale=w_scales,
        zero_point=0,
        qdim=0,
        data=rng.integers(-127, 128, (out_c, *kernel, c)).astype(np.int8),
    )
    shape = b.const_int32("output_shape", list(out_shape))
    ins = [shape, wt, x]
    if bias:
        bias_scales = [0.04 * s for s in (w_scales if per_channel else [w_scales] * out_c)]
        ins.append(
            b.tensor(
                "bias",
                [out_c],
                "int32",
                scale=bias_scales,
                zero_point=0,
                data=rng.integers(-3000, 3000, out_c).astype(np.int32),
            )
        )
    y = b.tensor("y", list(out_shape), scale=0.15, zero_point=4)
    o = schema.TransposeConvOptionsT()
    o.padding = getattr(schema.Padding, padding)
    o.strideH, o.strideW = stride
    o.fusedActivationFunction = getattr(schema.ActivationFunctionType, activation)
    b.op("TRANSPOSE_CONV", ins, [y], o, "TransposeConvOptions", version=3 if activation != "NONE" else 1)
    return b.build([x], [y]), in_shape


@pytest.mark.parametrize(
    "in_shape,out_c,kernel,stride,padding,per_channel,bias,act",
    [
        ((1, 4, 5, 3), 4, (3, 3), (2, 2), "SAME", True, True, "NONE"),
        ((1, 3, 4, 2), 3, (3, 4), (1, 2), "SAME", True, True, "RELU"),  # seanet style
        ((2, 3, 3, 4), 2, (2, 2), (2, 2), "VALID", False, False, "NONE"),
        ((1, 5, 5, 3), 5, (3, 3), (1, 1), "VALID", True, False, "RELU6"),
        ((1, 3, 3, 2), 3, (4, 4), (2, 2), "SAME", True, True, "NONE"),
    ],
)
def test_transpose_conv(in_shape, out_c, kernel, stride, padding, per_channel, bias, act) -> None:  # type: ignore[no-untyped-def]
    model, shape = _transpose_conv(in_shape, out_c, kernel, stride, padding, per_channel, bias, act)
    assert_bit_exact(model, [shape])


def test_transpose_conv_refuses_asymmetric_weights() -> None:
    b = ModelBuilder()
    x = b.tensor("x", [1, 2, 2, 1], scale=0.1, zero_point=0)
    w = b.tensor("w", [1, 2, 2, 1], scale=0.1, zero_point=3, data=np.ones((1, 2, 2, 1), np.int8))
    y = b.tensor("y", [1, 4, 4, 1], scale=0.1, zero_point=0)
    o = schema.TransposeConvOptionsT()
    o.padding, o.strideH, o.strideW = schema.Padding.SAME, 2, 2
    b.op("TRANSPOSE_CONV", [b.const_int32("shape", [1, 4, 4, 1]), w, x], [y], o, "TransposeConvOptions")
    refused(b.build([x], [y]), r"#0 TRANSPOSE_CONV: weights 'w' are .* symmetric")


# --- SQUARED_DIFFERENCE -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a,b,q",
    [
        ((1, 4, 4, 3), (1, 4, 4, 3), [(0.05, 3), (0.07, -5), (0.1, -128)]),
        ((2, 3, 5), (5,), [(0.013, -128), (0.02, 10), (0.06, -128)]),
        ((4, 1), (1, 6), [(0.3, 0), (0.3, 0), (20.0, -128)]),
    ],
)
def test_squared_difference(a: tuple[int, ...], b: tuple[int, ...], q: list[tuple[float, int]]) -> None:
    out = tuple(np.broadcast_shapes(a, b))
    model = single_op("SQUARED_DIFFERENCE", [a, b], [out], in_q=q[:2], out_q=q[2:])
    assert_bit_exact(model, [a, b], seed=len(a))


# --- every new operator in one model, through the C backend (compile_model -> MLF -> gcc) -----------------


def _chain() -> tuple[bytes, tuple[int, ...]]:
    """NCHW input -> TRANSPOSE -> STRIDED_SLICE -> HARD_SWISH -> SUB(const) -> LEAKY_RELU -> RESIZE_NEAREST
    -> TRANSPOSE_CONV -> SPLIT -> (MAXIMUM, MINIMUM) -> PACK -> UNPACK -> SQUARED_DIFFERENCE -> RELU6 ->
    SLICE -> RELU; every intermediate tensor is a model output, so a failure names the operator."""
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    outs: list[int] = []

    def act(name: str, shape: tuple[int, ...], q: tuple[float, int]) -> int:
        return b.tensor(name, list(shape), scale=q[0], zero_point=q[1])

    q0 = (0.05, -3)
    x = act("x", (1, 4, 6, 8), q0)
    t = act("transpose", (1, 6, 8, 4), q0)
    b.op("TRANSPOSE", [x, b.const_int32("perm", [0, 2, 3, 1])], [t])
    s = act("strided_slice", (1, 5, 4, 4), q0)
    o = schema.StridedSliceOptionsT()
    o.beginMask, o.endMask = 9, 9
    consts = [
        b.const_int32("b", [0, 1, 0, 0]),
        b.const_int32("e", [1, 6, 8, 4]),
        b.const_int32("s", [1, 1, 2, 1]),
    ]
    b.op("STRIDED_SLICE", [t, *consts], [s], o, "StridedSliceOptions")
    h = act("hard_swish", (1, 5, 4, 4), (0.03, -60))
    b.op("HARD_SWISH", [s], [h])
    c = b.tensor("c", [4], scale=0.02, zero_point=5, data=rng.integers(-128, 128, 4).astype(np.int8))
    d = act("sub", (1, 5, 4, 4), (0.04, 10))
    b.op("SUB", [h, c], [d])
    lr_o = schema.LeakyReluOptionsT()
    lr_o.alpha = 0.2
    lr = act("leaky_relu", (1, 5, 4, 4), (0.03, 20))
    b.op("LEAKY_RELU", [d], [lr], lr_o, "LeakyReluOptions")
    r = act("resize", (1, 7, 8, 4), (0.03, 20))
    b.op("RESIZE_NEAREST_NEIGHBOR", [lr, b.const_int32("size", [7, 8])], [r])
    w_scales = [float(v) for v in rng.uniform(0.005, 0.02, 6)]
    w = b.tensor(
        "w", [6, 3, 3, 4], scale=w_scales, qdim=0, data=rng.integers(-127, 128, (6, 3, 3, 4)).astype(np.int8)
    )
    bias = b.tensor("bias", [6], "int32", data=rng.integers(-500, 500, 6).astype(np.int32))
    tc = act("transpose_conv", (1, 14, 16, 6), (0.08, -2))
    tc_o = schema.TransposeConvOptionsT()
    tc_o.padding, tc_o.strideH, tc_o.strideW = schema.Padding.SAME, 2, 2
    b.op(
        "TRANSPOSE_CONV",
        [b.const_int32("oshape", [1, 14, 16, 6]), w, r, bias],
        [tc],
        tc_o,
        "TransposeConvOptions",
    )
    halves = [act(f"split{i}", (1, 14, 16, 3), (0.08, -2)) for i in range(2)]
    sp_o = schema.SplitOptionsT()
    sp_o.numSplits = 2
    b.op("SPLIT", [b.const_int32("axis", [3]), tc], halves, sp_o, "SplitOptions")
    mx = act("maximum", (1, 14, 16, 3), (0.08, -2))
    mn = act("minimum", (1, 14, 16, 3), (0.08, -2))
    b.op("MAXIMUM", halves, [mx])
    b.op("MINIMUM", halves, [mn])
    pk = act("pack", (2, 1, 14, 16, 3), (0.08, -2))
    pk_o = schema.PackOptionsT()
    pk_o.valuesCount, pk_o.axis = 2, 0
    b.op("PACK", [mx, mn], [pk], pk_o, "PackOptions")
    up = [act(f"unpack{i}", (1, 14, 16, 3), (0.08, -2)) for i in range(2)]
    up_o = schema.UnpackOptionsT()
    up_o.num, up_o.axis = 2, 0
    b.op("UNPACK", [pk], up, up_o, "UnpackOptions")
    sq = act("squared_difference", (1, 14, 16, 3), (0.3, -128))
    b.op("SQUARED_DIFFERENCE", up, [sq])
    r6 = act("relu6", (1, 14, 16, 3), (0.3, -128))
    b.op("RELU6", [sq], [r6])
    sl = act("slice", (1, 10, 9, 3), (0.3, -128))
    b.op("SLICE", [r6, b.const_int32("begin", [0, 2, 3, 0]), b.const_int32("size", [1, 10, 9, 3])], [sl])
    rl = act("relu", (1, 10, 9, 3), (0.2, -100))
    b.op("RELU", [sl], [rl])
    outs = [t, s, h, d, lr, r, tc, *halves, mx, mn, pk, *up, sq, r6, sl, rl]
    return b.build([x], outs), (1, 4, 6, 8)


def _chain2() -> tuple[bytes, tuple[int, ...]]:
    """SPACE_TO_DEPTH -> PRELU -> DEPTH_TO_SPACE -> REDUCE_MIN -> ARG_MAX (int32 model output)."""
    rng = np.random.default_rng(9)
    b = ModelBuilder()
    q = (0.05, -3)
    x = b.tensor("x", [1, 6, 4, 2], scale=q[0], zero_point=q[1])
    s2d = b.tensor("s2d", [1, 3, 2, 8], scale=q[0], zero_point=q[1])
    o = schema.SpaceToDepthOptionsT()
    o.blockSize = 2
    b.op("SPACE_TO_DEPTH", [x], [s2d], o, "SpaceToDepthOptions")
    alpha = b.tensor("alpha", [8], scale=0.01, zero_point=4, data=rng.integers(-128, 128, 8).astype(np.int8))
    pr = b.tensor("prelu", [1, 3, 2, 8], scale=0.04, zero_point=-20)
    b.op("PRELU", [s2d, alpha], [pr])
    d2s = b.tensor("d2s", [1, 6, 4, 2], scale=0.04, zero_point=-20)
    o2 = schema.DepthToSpaceOptionsT()
    o2.blockSize = 2
    b.op("DEPTH_TO_SPACE", [pr], [d2s], o2, "DepthToSpaceOptions")
    rm = b.tensor("reduce_min", [1, 6, 2], scale=0.04, zero_point=-20)
    ro = schema.ReducerOptionsT()
    ro.keepDims = False
    b.op("REDUCE_MIN", [d2s, b.const_int32("axes", [2])], [rm], ro, "ReducerOptions")
    am = b.tensor("arg_max", [1, 2], "int32")
    ao = schema.ArgMaxOptionsT()
    ao.outputType = schema.TensorType.INT32
    b.op("ARG_MAX", [rm, b.const_int32("axis", [1])], [am], ao, "ArgMaxOptions")
    return b.build([x], [s2d, pr, d2s, rm, am]), (1, 6, 4, 2)


@pytest.mark.parametrize("chain", [_chain, _chain2])
def test_chain_host(chain: Callable[[], tuple[bytes, tuple[int, ...]]]) -> None:
    model, shape = chain()
    assert_bit_exact(model, [shape])


@pytest.mark.parametrize("exposed", ["every_tensor", "last_only"])
@pytest.mark.parametrize("chain", [_chain, _chain2])
def test_chain_through_c_backend(chain, exposed: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With only the last tensor exposed the arena planner may overlap and run kernels in place."""
    from tvmc_micro.compiler import compile_model

    from tests.compiler import compiler_harness as harness

    model, shape = chain()
    if exposed == "last_only":
        import tflite

        sg = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
        model = with_outputs(model, [int(sg.Outputs(sg.OutputsLength() - 1))])
    source = tmp_path / "chain.tflite"
    source.write_bytes(model)
    result = compile_model(source, tmp_path / "chain.tar")
    assert result.metadata["models"][0]["compute_path"] == "integer"
    built = harness.build(harness.extract(tmp_path / "chain.tar", tmp_path / "mlf"))
    rng = np.random.default_rng(3)
    samples = [[rng.integers(-128, 128, size=shape).astype(np.int8)] for _ in range(N_RANDOM)]
    ref = Tflm(model)
    for k, (sample, got) in enumerate(zip(samples, built.run(samples, tmp_path), strict=True)):
        for j, (want, out) in enumerate(zip(ref(*sample), got, strict=True)):
            assert out.tobytes() == want.reshape(out.shape).tobytes(), f"sample {k}: output {j} differs"


# --- PRELU, ARG_MAX/ARG_MIN, REDUCE_MAX/REDUCE_MIN, DEPTH_TO_SPACE/SPACE_TO_DEPTH -----------------------


@pytest.mark.parametrize(
    "shape,alpha_shape,q",
    [
        ((1, 4, 4, 3), (3,), [(0.05, 3), (0.01, -20), (0.04, -7)]),
        ((2, 6), (2, 6), [(0.1, -128), (0.004, 10), (0.1, -100)]),
        ((1, 3, 5, 2), (1, 1, 2), [(0.02, 60), (0.02, 0), (0.01, 10)]),
    ],
)
def test_prelu(shape: tuple[int, ...], alpha_shape: tuple[int, ...], q: list[tuple[float, int]]) -> None:
    rng = np.random.default_rng(len(shape))

    def consts(b: ModelBuilder) -> list[int]:
        data = rng.integers(-128, 128, alpha_shape).astype(np.int8)
        return [b.tensor("alpha", list(alpha_shape), scale=q[1][0], zero_point=q[1][1], data=data)]

    model = single_op("PRELU", [shape], [shape], consts, in_q=[q[0]], out_q=[q[2]])
    assert_bit_exact(model, [shape])


def _arg(opname: str, shape: tuple[int, ...], axis: int, out_dtype: str = "int32") -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", list(shape), scale=0.1, zero_point=0)
    out_shape = [d for i, d in enumerate(shape) if i != axis % len(shape)]
    y = b.tensor("y", out_shape, out_dtype)
    o = schema.ArgMaxOptionsT() if opname == "ARG_MAX" else schema.ArgMinOptionsT()
    o.outputType = getattr(schema.TensorType, out_dtype.upper())
    b.op(opname, [x, b.const_int32("axis", [axis])], [y], o, type(o).__name__[:-1])
    return b.build([x], [y])


@pytest.mark.parametrize("opname", ["ARG_MAX", "ARG_MIN"])
@pytest.mark.parametrize("shape,axis", [((1, 10), 1), ((3, 4, 5), 0), ((2, 3, 4), -2)])
def test_arg_min_max(opname: str, shape: tuple[int, ...], axis: int) -> None:
    model = _arg(opname, shape, axis)
    assert_bit_exact(model, [shape])
    # Ties: TFLM keeps the first index holding the extreme value.
    ours, ref = compile_host(model, "arg"), Tflm(model)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.integers(-2, 2, size=shape).astype(np.int8)
        np.testing.assert_array_equal(ours(x)[0], ref(x)[0])


@pytest.mark.parametrize("opname", ["REDUCE_MAX", "REDUCE_MIN"])
@pytest.mark.parametrize(
    "shape,axes,keep", [((1, 4, 5, 3), [1, 2], True), ((3, 4), [0], False), ((2, 3, 4), [-1], False)]
)
def test_reduce_max_min(opname: str, shape: tuple[int, ...], axes: list[int], keep: bool) -> None:
    norm = [a % len(shape) for a in axes]
    out = tuple((1 if i in norm else d) for i, d in enumerate(shape) if keep or i not in norm)
    o = schema.ReducerOptionsT()
    o.keepDims = keep
    model = single_op(opname, [shape], [out], lambda b: [b.const_int32("axes", axes)], o, "ReducerOptions")
    assert_bit_exact(model, [shape])


@pytest.mark.parametrize("opname", ["DEPTH_TO_SPACE", "SPACE_TO_DEPTH"])
@pytest.mark.parametrize("block", [2, 3])
def test_depth_space(opname: str, block: int) -> None:
    if opname == "DEPTH_TO_SPACE":
        shape, out = (1, 3, 2, 2 * block * block), (1, 3 * block, 2 * block, 2)
        o = schema.DepthToSpaceOptionsT()
    else:
        shape, out = (2, 2 * block, 3 * block, 3), (2, 2, 3, 3 * block * block)
        o = schema.SpaceToDepthOptionsT()
    o.blockSize = block
    assert_bit_exact(single_op(opname, [shape], [out], options=o, kind=type(o).__name__[:-1]), [shape])


def test_more_refusals() -> None:
    refused(_arg("ARG_MAX", (2, 3), 5), r"#0 ARG_MAX: axis 5 is outside")
    o = schema.SpaceToDepthOptionsT()
    o.blockSize = 2
    refused(
        single_op("SPACE_TO_DEPTH", [(1, 3, 4, 1)], [(1, 1, 2, 4)], options=o, kind="SpaceToDepthOptions"),
        r"#0 SPACE_TO_DEPTH: input \[1, 3, 4, 1\] with block size 2 does not give",
    )
    model = single_op(
        "REDUCE_MAX", [(2, 3)], [(2,)], lambda b: [b.const_int32("axes", [1])], out_q=[(0.2, 0)]
    )
    refused(model, r"#0 REDUCE_MAX: input int8 .* quantized alike")
