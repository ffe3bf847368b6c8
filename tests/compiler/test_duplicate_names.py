"""A float TFLite model that reuses a tensor name: TVM's frontend keys tensors by name and would wire the
wrong one, so the compiler refuses it by name instead of compiling something wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.quantized.tflite_builder import ModelBuilder, fc_options


def _mlp_with_duplicate_weight_names() -> bytes:
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.tensor("x", [1, 4], "float32")
    w1 = b.tensor("w", [8, 4], "float32", data=rng.normal(size=(8, 4)).astype(np.float32))
    h = b.tensor("h", [1, 8], "float32")
    w2 = b.tensor("w", [2, 8], "float32", data=rng.normal(size=(2, 8)).astype(np.float32))
    y = b.tensor("y", [1, 2], "float32")
    b.op("FULLY_CONNECTED", [x, w1, -1], [h], fc_options(), "FullyConnectedOptions")
    b.op("FULLY_CONNECTED", [h, w2, -1], [y], fc_options(), "FullyConnectedOptions")
    return b.build([x], [y])


def test_duplicate_tensor_names_are_refused_by_name(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.errors import TvmcError

    src = tmp_path / "dup.tflite"
    src.write_bytes(_mlp_with_duplicate_weight_names())
    with pytest.raises(TvmcError, match=r"reuses tensor names \('w'\)") as err:
        compile_model(src, tmp_path / "dup.tar")
    assert "converter" in (err.value.hint or "")
    assert not (tmp_path / "dup.tar").exists()
