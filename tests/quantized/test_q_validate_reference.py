"""`--validate` picks TFLite Micro for every .tflite it runs (int8, float, mixed) and LiteRT only when
TFLite Micro refuses the model, saying so; on the integer path a refusal is an error, never a fallback."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qharness import Tflm
from tflite_builder import ModelBuilder
from tvmc_micro.errors import TvmcError
from tvmc_micro.validate import reference_name, reference_outputs

pytestmark = pytest.mark.usefixtures("tvm_available")


def _float_unary(opname: str) -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", [2, 3], "float32")
    y = b.tensor("y", [2, 3], "float32")
    b.op(opname, [x], [y])
    return b.build([x], [y])


META = {"outputs": [{"name": "y"}]}


def test_reference_name_is_tflite_micro_for_every_tflite_path() -> None:
    for path in ("integer", "qdq", "float"):
        assert reference_name("tflite", path) == "tflite-micro"
    assert reference_name("onnx", "integer") == "onnxruntime"


@pytest.mark.parametrize("path", ["float", "integer"])
def test_a_model_tflm_runs_is_validated_against_tflm(path: str, tmp_path: Path) -> None:
    model = _float_unary("EXP")
    (tmp_path / "exp.tflite").write_bytes(model)
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)
    name, outs = reference_outputs(tmp_path / "exp.tflite", "tflite", path, [x], META)
    assert name == "tflite-micro"
    assert outs[0].tobytes() == Tflm(model)(x)[0].tobytes()


def test_litert_only_when_tflm_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ai_edge_litert")
    (tmp_path / "gelu.tflite").write_bytes(_float_unary("GELU"))
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)
    name, outs = reference_outputs(tmp_path / "gelu.tflite", "tflite", "float", [x], META)
    assert name.startswith("LiteRT (TFLite Micro refused the model")
    assert "TFLite Micro cannot run gelu.tflite" in capsys.readouterr().err
    exact = 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2)))
    assert np.allclose(outs[0], exact, atol=1e-3)


def test_integer_path_never_falls_back(tmp_path: Path) -> None:
    (tmp_path / "gelu.tflite").write_bytes(_float_unary("GELU"))
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(TvmcError, match=r"tflite-micro could not run gelu\.tflite"):
        reference_outputs(tmp_path / "gelu.tflite", "tflite", "integer", [x], META)
