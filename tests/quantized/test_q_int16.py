"""int16 activations (TFLite "16x8": int16 data, int8 weights, int64 bias) on the integer path, every
operator bit-exact against TFLite Micro on random full-range inputs; unsupported int16 patterns are
refused naming the operator and its quantisation."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import int16_models as m
import numpy as np
import pytest
from qharness import bit_difference, compile_host

pytestmark = pytest.mark.usefixtures("tvm_available")

N_RANDOM = 20

MODELS: dict[str, Callable[[], bytes]] = {
    # QUANTIZE / DEQUANTIZE at every int16 edge TFLM supports
    "quantize_int32_to_int16": lambda: m.quantize(1, "int32", "int16"),
    "quantize_int16_to_int32": lambda: m.quantize(2, "int16", "int32"),
    "quantize_int16_to_int8": lambda: m.quantize(3, "int16", "int8"),
    "quantize_int8_to_int16": lambda: m.quantize(4, "int8", "int16"),
    "quantize_int16_to_int16": lambda: m.quantize(5, "int16", "int16"),
    "quantize_float_to_int16": lambda: m.quantize(6, "float32", "int16"),
    "dequantize_int16": lambda: m.quantize(7, "int16", "float32"),
    # data movement
    "pad": lambda: m.pad(8, [[0, 0], [1, 2], [3, 0], [0, 1]]),
    "padv2_value": lambda: m.pad(9, [[0, 0], [0, 0], [2, 2], [0, 0]], value=-1234),
    "slice_masks": lambda: m.strided_slice(
        [1, 8, 20, 2], [0, -6, 0, 0], [0, 0, 0, 2], [1, 1, 1, 1], [1, 6, 20, 2], (13, 15, 0)
    ),
    "slice_strided": lambda: m.strided_slice(
        [2, 9, 11, 3], [1, 1, -10, 0], [2, 8, 11, 3], [1, 3, 2, 2], [1, 3, 5, 2]
    ),
    "slice_reverse_shrink": lambda: m.strided_slice(
        [1, 6, 7, 4], [0, 5, -1, 2], [1, 0, 0, 3], [1, -2, -3, 1], [3, 2], (0, 0, 9)
    ),
    # CONV_2D 16x8
    "conv_same": lambda: m.conv2d(10, (1, 8, 17, 3), 5, (3, 3)),
    "conv_valid_stride2_relu": lambda: m.conv2d(
        11, (1, 9, 12, 4), 6, (3, 4), "VALID", (2, 2), activation="RELU"
    ),
    "conv_dilated_per_tensor": lambda: m.conv2d(
        12, (1, 10, 10, 2), 3, (3, 3), dilation=(2, 2), per_channel=False
    ),
    "conv_int32_bias": lambda: m.conv2d(13, (1, 6, 9, 4), 4, (3, 3), bias="int32", activation="RELU"),
    "conv_no_bias_grouped": lambda: m.conv2d(14, (1, 5, 7, 4), 4, (1, 3), bias=None, filter_c=2),
    # TRANSPOSE_CONV 16x8
    "tconv_stride_1x2": lambda: m.transpose_conv(15, (1, 2, 5, 6), 4, (3, 4), (1, 2)),
    "tconv_stride_2x2_valid": lambda: m.transpose_conv(16, (1, 3, 4, 3), 5, (3, 3), (2, 2), "VALID"),
    "tconv_no_bias": lambda: m.transpose_conv(17, (1, 4, 4, 2), 3, (2, 2), (2, 2), with_bias=False),
    # DEPTHWISE_CONV_2D, FULLY_CONNECTED 16x8, pooling and CONCATENATION on int16
    "depthwise": lambda: m.depthwise(26, (1, 7, 9, 4), 1, (3, 3)),
    "depthwise_mult2_stride2": lambda: m.depthwise(27, (1, 8, 8, 3), 2, (3, 5), "VALID", (2, 2), "RELU"),
    "fc": lambda: m.fully_connected(28, 3, 40, 7),
    "fc_int32_bias": lambda: m.fully_connected(29, 2, 33, 5, "int32"),
    "fc_no_bias": lambda: m.fully_connected(30, 1, 16, 9, None),
    "max_pool": lambda: m.pool("MAX_POOL_2D", (3, 3), (2, 2), "SAME"),
    "average_pool": lambda: m.pool("AVERAGE_POOL_2D", (2, 3), (2, 2), "SAME"),
    "average_pool_valid": lambda: m.pool("AVERAGE_POOL_2D", (3, 3), (1, 2), "VALID"),
    "concat_channels": lambda: m.concatenation(3),
    "concat_width": lambda: m.concatenation(2),
    # ADD / SUB with TFLM's general rescaling (left shift 15)
    "add": lambda: m.add_sub(18, "ADD", [1, 2, 5, 8], [1, 2, 5, 8]),
    "add_broadcast_relu": lambda: m.add_sub(19, "ADD", [1, 2, 5, 8], [8], "RELU"),
    "add_zero_points": lambda: m.add_sub(20, "ADD", [2, 7], [2, 7], zero_points=(12, -30, 5)),
    "sub": lambda: m.add_sub(21, "SUB", [1, 3, 4, 6], [1, 3, 4, 6]),
    "sub_broadcast_relu_n1_to_1": lambda: m.add_sub(22, "SUB", [1, 3, 4, 6], [1, 1, 4, 1], "RELU_N1_TO_1"),
    "mul": lambda: m.mul(31, [1, 3, 5, 4], [1, 3, 5, 4]),
    "mul_broadcast_relu": lambda: m.mul(32, [1, 3, 5, 4], [1, 1, 1, 4], "RELU"),
    # LEAKY_RELU with alpha below and above one
    "leaky_relu_0.3": lambda: m.leaky_relu(23, 0.3),
    "leaky_relu_0.01": lambda: m.leaky_relu(24, 0.01),
    "leaky_relu_1.7": lambda: m.leaky_relu(25, 1.7),
    "leaky_relu_negative": lambda: m.leaky_relu(33, -0.4),
}


def _compare(model: bytes, name: str, seed: int) -> int:
    from tflite_micro.python.tflite_micro import runtime

    ours = compile_host(model, name)
    ref = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    rng = np.random.default_rng(seed)
    worst = 0
    for _ in range(N_RANDOM):
        xs = m.random_inputs(rng, model)
        for i, x in enumerate(xs):
            ref.set_input(x, i)
        ref.invoke()
        got = ours(*xs)[0]
        worst = max(worst, bit_difference(np.array(ref.get_output(0)), got))
    return worst


@pytest.mark.parametrize("name", sorted(MODELS))
def test_int16_operator_bit_exact(name: str) -> None:
    assert _compare(MODELS[name](), name, seed=zlib.crc32(name.encode()) % 1000) == 0


@pytest.mark.parametrize("seed", range(4))
def test_random_scales_bit_exact(seed: int) -> None:
    """Random scale combinations on 65,536-element tensors: the multipliers must be computed in the same
    precision as TFLM's Prepare() (float instead of double moves a multiplier by ~50 / 2^31, which shows
    as one LSB on roughly one element in a thousand)."""
    for op in ("ADD", "SUB"):
        model = m.add_sub(100 + seed, op, [64, 1024], [64, 1024])
        assert _compare(model, f"{op}{seed}", seed) == 0
    alpha = float(np.float32(0.05 + 0.3 * seed))
    model = m.leaky_relu(200 + seed, alpha, (256, 256))
    # Every int16 value once: LEAKY_RELU is elementwise, so this is exhaustive.
    every = np.arange(-(1 << 15), 1 << 15, dtype=np.int16).reshape(256, 256)
    from tflite_micro.python.tflite_micro import runtime

    ref = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    ref.set_input(every, 0)
    ref.invoke()
    assert bit_difference(np.array(ref.get_output(0)), compile_host(model, f"lr{seed}")(every)[0]) == 0


def _refusals() -> bytes:
    """Five int16 operators the integer path must refuse, each for a different reason."""
    from tflite_builder import ModelBuilder, conv_options, softmax_options
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    b = ModelBuilder()
    x = b.tensor("x", [1, 4, 4, 2], "int16", 0.001, 5)  # int16 with a non-zero zero point
    w = b.tensor("w", [2, 1, 1, 2], "int8", [0.01, 0.02], 0, data=np.ones((2, 1, 1, 2), np.int8))
    c = b.tensor("conv", [1, 4, 4, 2], "int16", 0.002, 0)
    b.op("CONV_2D", [x, w], [c], conv_options(), version=3)
    w16 = b.tensor("w16", [2, 1, 1, 2], "int16", 0.01, 0, data=np.ones((2, 1, 1, 2), np.int16))
    c2 = b.tensor("conv16x16", [1, 4, 4, 2], "int16", 0.002, 0)
    b.op("CONV_2D", [c, w16], [c2], conv_options(), version=3)
    ins = [
        c2,
        b.const_int32("begin", [0] * 4),
        b.const_int32("end", [1, 4, 4, 2]),
        b.const_int32("st", [1] * 4),
    ]
    s = b.tensor("slice", [1, 4, 4, 2], "int16", 0.002, 0)
    o = schema.StridedSliceOptionsT()
    o.ellipsisMask = 2
    b.op("STRIDED_SLICE", ins, [s], o, "StridedSliceOptions")
    m32 = b.tensor("softmax", [1, 4, 4, 2], "int16", 0.002, 0)
    b.op("SOFTMAX", [s], [m32], softmax_options(), "SoftmaxOptions")
    q = b.tensor("q", [1, 4, 4, 2], "int32", 1e-6, 0)
    q2 = b.tensor("q2", [1, 4, 4, 2], "int16", [1e-3, 2e-3], 0, qdim=3)  # per-channel int16
    b.op("QUANTIZE", [m32], [q])
    b.op("QUANTIZE", [q], [q2])
    return b.build([x], [q2])


def test_unsupported_int16_patterns_are_named_with_their_quantisation() -> None:
    from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel, import_tflite_quantized

    with pytest.raises(UnsupportedQuantizedModel) as info:
        import_tflite_quantized(_refusals(), "bad16")
    problems = {p.index: (p.op_name, p.reason, p.quantization) for p in info.value.problems}
    assert [p.index for p in info.value.problems] == [0, 1, 2, 3, 5]
    assert problems[0][0] == "CONV_2D" and "16x8 needs zero point 0" in problems[0][1]
    assert "in int16 per-tensor (scale 0.001, zero point 5)" in problems[0][2]
    assert problems[1][0] == "CONV_2D" and "16x8 needs int8 weights" in problems[1][1]
    assert "in int16 per-tensor (scale 0.01, zero point 0)" in problems[1][2]  # the int16 weights
    assert problems[2][0] == "STRIDED_SLICE" and "ellipsis" in problems[2][1]
    assert problems[3][0] == "SOFTMAX" and "output scale 0.002; int16 SOFTMAX needs 1/32768" in problems[3][1]
    assert problems[5][0] == "QUANTIZE" and "needs int8, int16 or int32 per-tensor" in problems[5][1]
    assert "int16 per-channel (axis 3, 2 scales, zero point 0)" in problems[5][1]


def test_int16_refusal_through_compile_model(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.errors import TvmcError

    (tmp_path / "bad.tflite").write_bytes(_refusals())
    with pytest.raises(TvmcError, match=r"operator #1 CONV_2D: weights 'w16' are int16 per-tensor"):
        compile_model(tmp_path / "bad.tflite", tmp_path / "bad.tar")
