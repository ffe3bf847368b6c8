"""Fixtures for the device-session tests: real crt_host firmware builds of the reference tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tvmc_micro.device.process import ProcessTransport
from tvmc_micro.device.reference_model import build_host_firmware, write_tiny_mlf


@pytest.fixture(scope="session")
def tiny4_firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference device of the doc's session vectors (n = 4, default crt_host packet size)."""
    root = tmp_path_factory.mktemp("tiny4")
    return build_host_firmware(write_tiny_mlf(root / "mlf", n=4), root / "firmware")


@pytest.fixture(scope="session")
def tiny_big_firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """n = 1000 with 128-byte packets, so every tensor transfer takes several chunks."""
    root = tmp_path_factory.mktemp("tiny1000")
    mlf = write_tiny_mlf(root / "mlf", n=1000)
    return build_host_firmware(mlf, root / "firmware", extra_flags=("-DCRT_HOST_MAX_PAYLOAD=128",))


@pytest.fixture(scope="session")
def tiny_noprofile_firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny_noprof")
    return build_host_firmware(write_tiny_mlf(root / "mlf", n=4), root / "firmware", profile=False)


@pytest.fixture
def device4(tiny4_firmware: Path) -> Iterator[ProcessTransport]:
    transport = ProcessTransport([str(tiny4_firmware)])
    yield transport
    transport.close()


@pytest.fixture
def device_big(tiny_big_firmware: Path) -> Iterator[ProcessTransport]:
    transport = ProcessTransport([str(tiny_big_firmware)])
    yield transport
    transport.close()
