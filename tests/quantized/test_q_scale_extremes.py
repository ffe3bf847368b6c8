"""Requantisation scales at the edges of TFLite's fixed point (found by mutating ad01_int8: one byte made
an activation scale 3e38): a multiplier TFLite rounds to zero compiles and matches TFLite Micro (every
output is the zero point); one that would need a left shift beyond 30 bits — undefined behaviour in
TFLite Micro — is refused naming the operator."""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
import pytest
from qharness import Tflm, compile_host
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
from tvmc_micro.compiler.quantized import import_tflite_quantized
from tvmc_micro.compiler.quantized.errors import UnsupportedQuantizedModel

from tests.conftest import model_path


def _with_scale(data: bytes, tensor_index: int, scale: float) -> bytes:
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    model.subgraphs[0].tensors[tensor_index].quantization.scale = [scale]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _fc_output(data: bytes, k: int) -> int:
    model: Any = schema.ModelT.InitFromPackedBuf(data, 0)
    return int(model.subgraphs[0].operators[k].outputs[0])


def test_multiplier_rounded_to_zero_matches_tflm() -> None:
    base = model_path("hello_world_int8.tflite").read_bytes()
    # The last layer's output scale so large that in*w/out underflows TFLite's multiplier to 0 (no layer
    # reads it, so no later multiplier grows instead).
    model = _with_scale(base, _fc_output(base, -1), 1e30)
    ours, ref = compile_host(model, "huge_out_scale"), Tflm(model)
    rng = np.random.default_rng(3)
    for _ in range(8):
        x = rng.integers(-128, 128, (1, 1), dtype=np.int8)
        np.testing.assert_array_equal(ours(x)[0], ref(x)[0])


def test_left_shift_beyond_30_bits_is_refused() -> None:
    base = model_path("hello_world_int8.tflite").read_bytes()
    model = _with_scale(base, _fc_output(base, 0), 1e-30)
    with pytest.raises(UnsupportedQuantizedModel, match=r"operator #0 FULLY_CONNECTED: requantisation scale"):
        import_tflite_quantized(model, "tiny_out_scale")
