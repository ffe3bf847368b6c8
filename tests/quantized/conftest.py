"""Fixtures for the integer-path tests (helpers are in qharness.py, imported by name)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tvm_available() -> None:
    pytest.importorskip("tvm")
    pytest.importorskip("tflite_micro")
