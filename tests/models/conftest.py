"""Fixtures for the unseen-model sweep: the TFLite builders of tests/quantized on the import path, and one
session-wide cache so each stand-in model is compiled (and built with gcc) once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tflite_builder / synthetic are imported by bare name (they import each other that way).
_QUANTIZED = Path(__file__).resolve().parent.parent / "quantized"
if str(_QUANTIZED) not in sys.path:
    sys.path.insert(0, str(_QUANTIZED))


@pytest.fixture(scope="session")
def tvm_and_tflm() -> None:
    pytest.importorskip("tvm")
    pytest.importorskip("tflite_micro")


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory, tvm_and_tflm: None):  # type: ignore[no-untyped-def]
    from zoo_harness import ZooCache

    return ZooCache(tmp_path_factory.mktemp("zoo"))
