"""uint8 edges the integer path does not take (QUANTIZE float32 -> uint8): refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_zoo import Net


def test_float_to_uint8_quantize_is_refused_with_reason(tmp_path: Path, tvm_and_tflm: None) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.errors import TvmcError

    net = Net(0)
    x = net.act("input", (1, 8), dtype="float32")
    y = net.quantize(x, "uint8", 0.02, 128)
    h = net.fc(net.quantize(x, "int8", 0.02, 0), 4)  # an int8 body, so the integer path is chosen
    src = tmp_path / "f2u.tflite"
    src.write_bytes(net.finish("f2u", [x], [y, h]).model)
    with pytest.raises(TvmcError, match="a uint8 output needs an int8 per-tensor input") as err:
        compile_model(src, tmp_path / "f2u.tar")
    assert "--allow-float-fallback" in (err.value.hint or "")
