"""GATHER (constant indices), BATCH_TO_SPACE_ND / SPACE_TO_BATCH_ND, MIRROR_PAD and RESIZE_BILINEAR on the
int8 path: single-operator models bit-exact against TFLite Micro on random inputs, and each refusal named."""

from __future__ import annotations

import numpy as np
import pytest
from test_q_more_ops import assert_bit_exact, refused, single_op
from tflite_builder import ModelBuilder
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

pytestmark = pytest.mark.usefixtures("tvm_available")


# --- GATHER ---------------------------------------------------------------------------------------------


def _gather(shape: tuple[int, ...], indices: np.ndarray, axis: int, batch_dims: int = 0) -> bytes:
    o = schema.GatherOptionsT()
    o.axis, o.batchDims = axis, batch_dims
    a = axis % len(shape)
    out = (*shape[:a], *indices.shape, *shape[a + 1 :])
    return single_op(
        "GATHER", [shape], [out], lambda b: [b.const_int32("indices", indices)], o, "GatherOptions"
    )


@pytest.mark.parametrize(
    "shape,indices,axis",
    [
        ((5, 3), np.array([4, 0, 2, 2]), 0),
        ((2, 5, 3), np.array([[4, 0], [1, 3], [3, 3]]), 1),  # 2-D indices: rank grows
        ((2, 3, 7), np.array([6, 0, 5]), -1),  # negative axis
        ((1, 4, 3, 2), np.array(2), 1),  # a scalar index: rank shrinks
    ],
)
def test_gather(shape: tuple[int, ...], indices: np.ndarray, axis: int) -> None:
    assert_bit_exact(_gather(shape, indices, axis), [shape])


def test_gather_refusals() -> None:
    refused(_gather((5, 3), np.array([1, 5]), 0), r"#0 GATHER: index 5 is outside \[0, 5\) on axis 0")
    refused(_gather((5, 3), np.array([-1]), 0), r"#0 GATHER: index -1 is outside")
    refused(_gather((2, 5, 3), np.array([[1], [0]]), 1, batch_dims=1), r"batch_dims 1 is not supported")
    b = ModelBuilder()
    x = b.tensor("x", [5, 3], scale=0.1, zero_point=0)
    idx = b.tensor("idx", [2], "int32")
    y = b.tensor("y", [2, 3], scale=0.1, zero_point=0)
    b.op("GATHER", [x, idx], [y], schema.GatherOptionsT(), "GatherOptions")
    refused(b.build([x, idx], [y]), r"#0 GATHER: the indices are computed at run time")


# --- BATCH_TO_SPACE_ND / SPACE_TO_BATCH_ND ----------------------------------------------------------------


def _space_batch(
    opname: str,
    shape: tuple[int, ...],
    out: tuple[int, ...],
    block: list[int],
    amounts: list[list[int]],
    zero_point: int = -7,
) -> bytes:
    return single_op(
        opname,
        [shape],
        [out],
        lambda b: [b.const_int32("block", block), b.const_int32("amounts", np.array(amounts))],
        in_q=[(0.05, zero_point)],
    )


@pytest.mark.parametrize(
    "shape,out,block,crops",
    [
        ((4, 2, 3, 2), (1, 4, 6, 2), [2, 2], [[0, 0], [0, 0]]),
        ((12, 3, 2, 5), (2, 5, 3, 5), [3, 2], [[1, 3], [0, 1]]),  # crops on every side, batches 2
        ((6, 4, 3), (2, 10, 3), [3], [[2, 0]]),  # 3-D: N, H, C
    ],
)
def test_batch_to_space(
    shape: tuple[int, ...], out: tuple[int, ...], block: list[int], crops: list[list[int]]
) -> None:
    assert_bit_exact(_space_batch("BATCH_TO_SPACE_ND", shape, out, block, crops), [shape])


def test_space_to_batch_unpadded() -> None:
    shape, out = (2, 4, 6, 2), (8, 2, 3, 2)
    assert_bit_exact(_space_batch("SPACE_TO_BATCH_ND", shape, out, [2, 2], [[0, 0], [0, 0]]), [shape])


@pytest.mark.parametrize(
    "shape,out,block,pads,zero_point",
    [
        ((2, 3, 4, 3), (12, 2, 3, 3), [2, 3], [[1, 0], [3, 2]], -7),
        ((1, 3, 2, 1), (4, 2, 2, 1), [2, 2], [[1, 0], [0, 2]], 0),
        ((2, 5, 3), (6, 2, 3), [3], [[0, 1]], 100),  # 3-D
    ],
)
def test_space_to_batch_padded_like_litert(
    shape: tuple[int, ...], out: tuple[int, ...], block: list[int], pads: list[list[int]], zero_point: int
) -> None:
    """Padding holds the output zero point (real 0.0), as LiteRT computes it. TFLite Micro's reference
    kernel fills it with `output_offset`, a field its Prepare never sets (whatever the arena held: 0, 24,
    ... between runs), so LiteRT is the reference here."""
    from ai_edge_litert.interpreter import Interpreter
    from qharness import compile_host

    model = _space_batch("SPACE_TO_BATCH_ND", shape, out, block, pads, zero_point=zero_point)
    ours = compile_host(model, "s2b")
    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        want = interp.get_tensor(interp.get_output_details()[0]["index"])
        got = ours(x)[0]
        np.testing.assert_array_equal(got, want)
        assert np.count_nonzero(got == zero_point) >= int(np.prod(out)) - x.size  # every padded element


def test_space_batch_refusals() -> None:
    bad_out = _space_batch("SPACE_TO_BATCH_ND", (1, 5, 6, 2), (4, 2, 3, 2), [2, 2], [[0, 0], [0, 0]])
    refused(
        bad_out,
        r"#0 SPACE_TO_BATCH_ND: input \[1, 5, 6, 2\] with block \[2, 2\] and paddings .* does not give",
    )
    bad_block = _space_batch("BATCH_TO_SPACE_ND", (4, 2, 3, 2), (1, 4, 6, 2), [2, 2, 1], [[0, 0], [0, 0]])
    refused(
        bad_block, r"#0 BATCH_TO_SPACE_ND: block shape \[2, 2, 1\] and crops .* do not fit a rank-4 input"
    )
    five_d = _space_batch("BATCH_TO_SPACE_ND", (4, 1, 2, 3, 2), (1, 1, 4, 6, 2), [2, 2], [[0, 0], [0, 0]])
    refused(five_d, r"needs 3-D or 4-D input")


# --- MIRROR_PAD ---------------------------------------------------------------------------------------------


def _mirror(shape: tuple[int, ...], pads: list[list[int]], reflect: bool) -> bytes:
    o = schema.MirrorPadOptionsT()
    o.mode = schema.MirrorPadMode.REFLECT if reflect else schema.MirrorPadMode.SYMMETRIC
    out = tuple(n + a + b for n, (a, b) in zip(shape, pads, strict=True))
    return single_op(
        "MIRROR_PAD", [shape], [out], lambda b: [b.const_int32("pads", np.array(pads))], o, "MirrorPadOptions"
    )


@pytest.mark.parametrize("reflect", [True, False])
@pytest.mark.parametrize(
    "shape,pads",
    [
        ((1, 3, 4, 2), [[0, 0], [1, 1], [2, 1], [0, 0]]),
        ((4, 5), [[3, 2], [0, 4]]),  # the largest REFLECT allows on the first axis
        ((2, 3, 3), [[1, 0], [2, 2], [0, 1]]),
    ],
)
def test_mirror_pad(shape: tuple[int, ...], pads: list[list[int]], reflect: bool) -> None:
    assert_bit_exact(_mirror(shape, pads, reflect), [shape])


def test_mirror_pad_refusals() -> None:
    refused(
        _mirror((3, 4), [[3, 0], [0, 0]], True),
        r"#0 MIRROR_PAD: padding \(3, 0\) on axis 0 exceeds 2, the most REFLECT",
    )
    refused(
        _mirror((3, 4), [[0, 0], [0, 5]], False), r"padding \(0, 5\) on axis 1 exceeds 4, the most SYMMETRIC"
    )
    mixed = single_op(
        "MIRROR_PAD",
        [(2, 2)],
        [(4, 2)],
        lambda b: [b.const_int32("pads", np.array([[1, 1], [0, 0]]))],
        schema.MirrorPadOptionsT(),
        "MirrorPadOptions",
        out_q=[(0.1, 0)],
    )
    refused(
        mixed,
        r"#0 MIRROR_PAD: input int8 .* and output int8 .* differ; MIRROR_PAD needs them quantized alike",
    )


# --- RESIZE_BILINEAR ------------------------------------------------------------------------------------


def _bilinear(shape: tuple[int, ...], size: tuple[int, int], align: bool, half: bool) -> bytes:
    o = schema.ResizeBilinearOptionsT()
    o.alignCorners, o.halfPixelCenters = align, half
    out = (shape[0], *size, shape[3])
    return single_op(
        "RESIZE_BILINEAR",
        [shape],
        [out],
        lambda b: [b.const_int32("size", list(size))],
        o,
        "ResizeBilinearOptions",
    )


@pytest.mark.parametrize(
    "shape,size,align,half",
    [
        ((1, 3, 4, 2), (5, 7), False, True),  # up, half-pixel: negative source coordinates at the edge
        ((1, 3, 4, 2), (6, 8), False, False),
        ((2, 5, 7, 3), (9, 4), True, False),  # align corners, down in width
        ((1, 8, 6, 1), (3, 5), False, True),  # down
        ((1, 1, 1, 4), (3, 2), False, False),  # a single source pixel
    ],
)
def test_resize_bilinear(shape: tuple[int, ...], size: tuple[int, int], align: bool, half: bool) -> None:
    assert_bit_exact(_bilinear(shape, size, align, half), [shape])


def test_resize_bilinear_refusals() -> None:
    refused(
        _bilinear((1, 3, 4, 2), (5, 7), True, True),
        r"#0 RESIZE_BILINEAR: align_corners and half_pixel_centers",
    )
    b = ModelBuilder()
    x = b.tensor("x", [1, 2, 2, 1], scale=0.1, zero_point=0)
    size = b.tensor("size", [2], "int32")
    y = b.tensor("y", [1, 4, 4, 1], scale=0.1, zero_point=0)
    b.op("RESIZE_BILINEAR", [x, size], [y])
    refused(b.build([x, size], [y]), r"#0 RESIZE_BILINEAR: the output size is computed at run time")
    int16 = single_op(
        "RESIZE_BILINEAR",
        [(1, 2, 2, 1)],
        [(1, 3, 3, 1)],
        lambda b: [b.const_int32("size", [3, 3])],
        dtype="int16",
    )
    refused(int16, r"#0 RESIZE_BILINEAR: input is int16 .*TFLite Micro's RESIZE_BILINEAR supports int8 only")
