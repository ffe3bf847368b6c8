"""What the integer importer refuses, and how it says so: every unsupported operator at once."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_builder import ModelBuilder, conv_options, fc_options, softmax_options
from tvmc_micro.compiler.quantized import (
    QuantizedModelError,
    UnsupportedQuantizedModel,
    import_tflite_quantized,
    is_quantized_tflite,
)

from tests.conftest import model_path


def _three_problem_model() -> bytes:
    """SQRT (no int8 kernel), a CONV_2D with asymmetric per-channel weights, a SOFTMAX TFLM would reject."""
    b = ModelBuilder()
    x = b.tensor("x", [1, 4, 4, 2], scale=0.1, zero_point=3)
    h = b.tensor("hs", [1, 4, 4, 2], scale=0.1, zero_point=3)
    b.op("SQRT", [x], [h])
    w = b.tensor(
        "w", [2, 1, 1, 2], scale=[0.01, 0.02], zero_point=[0, 5], qdim=0, data=np.ones((2, 1, 1, 2), np.int8)
    )
    bias = b.tensor("b", [2], "int32", scale=[0.001, 0.002], zero_point=0, data=np.zeros(2, np.int32))
    c = b.tensor("conv", [1, 4, 4, 2], scale=0.2, zero_point=0)
    b.op("CONV_2D", [h, w, bias], [c], conv_options(), "Conv2DOptions")
    s = b.tensor("softmax", [1, 4, 4, 2], scale=0.5, zero_point=0)
    b.op("SOFTMAX", [c], [s], softmax_options(), "SoftmaxOptions")
    return b.build([x], [s])


def test_every_unsupported_operator_is_listed_at_once_with_its_quantisation() -> None:
    with pytest.raises(UnsupportedQuantizedModel) as info:
        import_tflite_quantized(_three_problem_model(), "bad")
    err = info.value
    assert [(p.index, p.op_name) for p in err.problems] == [(0, "SQRT"), (1, "CONV_2D"), (2, "SOFTMAX")]
    text = str(err)
    assert "3 operator(s)" in text
    assert "operator #0 SQRT: no integer kernel" in text
    assert "per-channel (axis 0, 2 scales, zero points [0, 5])" in text
    assert "symmetric" in text
    assert "output scale 1/256 and zero point -128" in text
    assert "int8 per-tensor (scale 0.1, zero point 3)" in text
    assert err.hint is not None and "--allow-float-fallback" in err.hint


def test_int16_activations_are_named_in_the_refusal() -> None:
    # HARD_SWISH has an int8 kernel only (16x8 FULLY_CONNECTED, SOFTMAX, ... have int16 ones: see
    # test_q_int16.py and test_q_int16_act.py).
    b = ModelBuilder()
    x = b.tensor("x", [1, 8], "int16", scale=0.001, zero_point=0)
    y = b.tensor("y", [1, 8], "int16", scale=1 / 32768, zero_point=0)
    b.op("HARD_SWISH", [x], [y])
    with pytest.raises(UnsupportedQuantizedModel, match=r"#0 HARD_SWISH: input 'x' is int16 per-tensor"):
        import_tflite_quantized(b.build([x], [y]), "int16")


def test_non_constant_weights_are_refused() -> None:
    b = ModelBuilder()
    x = b.tensor("x", [1, 8], scale=0.1, zero_point=0)
    w = b.tensor("w", [4, 8], scale=0.01, zero_point=0)
    y = b.tensor("y", [1, 4], scale=0.2, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, -1], [y], fc_options(), "FullyConnectedOptions")
    with pytest.raises(UnsupportedQuantizedModel, match="computed at run time"):
        import_tflite_quantized(b.build([x, w], [y]), "dyn")


def test_float_model_is_not_quantized_and_is_refused_by_name() -> None:
    model = model_path("hello_world_float.tflite").read_bytes()
    assert not is_quantized_tflite(model)
    with pytest.raises(
        UnsupportedQuantizedModel, match=r"#0 FULLY_CONNECTED: input .* is float32 \(not quantized\)"
    ):
        import_tflite_quantized(model, "float")


def test_hybrid_model_is_not_quantized() -> None:
    """int8 weights with float activations (dynamic-range quantisation) is not a full-integer model."""
    b = ModelBuilder()
    x = b.tensor("x", [1, 8], "float32")
    w = b.tensor("w", [4, 8], scale=0.01, zero_point=0, data=np.ones((4, 8), np.int8))
    y = b.tensor("y", [1, 4], "float32")
    b.op("FULLY_CONNECTED", [x, w, -1], [y], fc_options(), "FullyConnectedOptions")
    assert not is_quantized_tflite(b.build([x], [y]))


def test_int8_models_are_quantized() -> None:
    assert is_quantized_tflite(model_path("kws_ref_model.tflite").read_bytes())
    assert is_quantized_tflite(model_path("hello_world_int8.tflite").read_bytes())


@pytest.mark.parametrize("data", [b"", b"not a model at all", b"\x00\x00\x00\x00TFL3" + b"\xff" * 12])
def test_unreadable_bytes_are_a_model_error(data: bytes) -> None:
    assert not is_quantized_tflite(data)
    with pytest.raises(QuantizedModelError, match="cannot read the TFLite model") as info:
        import_tflite_quantized(data, "garbage")
    assert info.value.hint is not None


def test_truncated_model_is_a_model_error() -> None:
    data = model_path("kws_ref_model.tflite").read_bytes()[:2000]
    with pytest.raises(QuantizedModelError, match="truncated or damaged"):
        import_tflite_quantized(data, "truncated")
