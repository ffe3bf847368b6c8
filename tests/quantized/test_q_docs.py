"""docs/quantized-models.md lists exactly the operators the integer path converts (so the page users read
to know whether their model compiles stays true)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "quantized-models.md"


def _listed(section: str) -> set[str]:
    text = DOC.read_text()
    match = re.search(rf"<!-- ops:{re.escape(section)} -->(.*?)<!-- /ops -->", text, re.S)
    assert match, f"section ops:{section} missing from {DOC.name}"
    return set(re.findall(r"`([A-Za-z0-9_]+)`", match.group(1)))


def _implemented(section: str) -> set[str]:
    from tvmc_micro.compiler.quantized import (
        float_island,
        lowering,
        lowering16,
        lowering_math,
        onnx_importer,
        stateful,
    )

    return {
        "tflite-int8": set(lowering.CONVERTERS),
        "tflite-int16": set(lowering16.CONVERTERS16),
        "tflite-stateful": set(stateful.STATEFUL_CONVERTERS),
        "tflite-int8-refused": set(lowering_math.REFUSED_INT8),
        "tflite-float": set(float_island.FLOAT_CONVERTERS),
        "onnx-qoperator": set(onnx_importer.QOPERATOR_CONVERTERS),
        "onnx-qdq": set(onnx_importer.QDQ_GROUP_CONVERTERS),
    }[section]


@pytest.mark.parametrize(
    "section",
    [
        "tflite-int8",
        "tflite-int16",
        "tflite-stateful",
        "tflite-int8-refused",
        "tflite-float",
        "onnx-qoperator",
        "onnx-qdq",
    ],
)
def test_doc_lists_the_converters(section: str) -> None:
    listed, implemented = _listed(section), _implemented(section)
    assert listed == implemented, (
        f"{DOC.name} [{section}]: listed but not implemented {sorted(listed - implemented)}; "
        f"implemented but not listed {sorted(implemented - listed)}"
    )
