"""The wire protocol's fault handling over the real QEMU UART pty: corrupted and lost frames in either
direction are retried and never change a result; a rebooted board is detected; a board that dies is
reported as such. Faults are injected in the bytes crossing the pty (the firmware is the real one)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cortex_m_device import HandlerTransport, make_project
from cortex_m_support import cm_server, require_qemu, require_toolchain
from tvmc_micro.device import DeviceResetError, DeviceSession, DeviceTransportClosedError

pytestmark = pytest.mark.slow
MODEL = "hello_world_int8.tflite"


@pytest.fixture(scope="module")
def project(compiled_mlf: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_toolchain()
    return make_project(
        compiled_mlf(MODEL), tmp_path_factory.mktemp("faults") / "proj", "mps2_an386"
    ).project_dir


@pytest.fixture()
def link(project: Path) -> Iterator[tuple[DeviceSession, HandlerTransport]]:
    require_qemu()
    transport = HandlerTransport(cm_server.CortexMHandler(project))
    # Short reply timeout: a lost frame costs one timeout before the retry.
    session = DeviceSession(transport, reply_timeout_sec=0.4, max_attempts=5, transport_name="QEMU pty")
    try:
        session.open()
        yield session, transport
    finally:
        session.close()


def _once(fault: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """A byte filter that applies `fault` to the first chunk it sees, then lets everything through."""
    state = {"done": False}

    def apply(data: bytes) -> bytes:
        if state["done"] or not data:
            return data
        state["done"] = True
        return fault(data)

    return apply


def _flip_middle(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0x5A
    return bytes(damaged)


def _infer(session: DeviceSession, value: int) -> bytes:
    session.set_input(0, bytes([value & 0xFF]))
    session.run()
    return session.get_output(0)


def test_corrupted_request_is_retried(link: tuple[DeviceSession, HandlerTransport]) -> None:
    session, transport = link
    clean = _infer(session, 77)
    before = session.stats.retransmissions
    transport.on_write = _once(_flip_middle)  # the device sees a CRC error and NACKs
    assert _infer(session, 77) == clean
    assert session.stats.retransmissions > before


def test_lost_request_is_retried(link: tuple[DeviceSession, HandlerTransport]) -> None:
    session, transport = link
    clean = _infer(session, -40)
    before = session.stats.timeouts
    transport.on_write = _once(lambda data: b"")  # never reaches the UART
    assert _infer(session, -40) == clean
    assert session.stats.timeouts > before


def test_corrupted_reply_is_retried(link: tuple[DeviceSession, HandlerTransport]) -> None:
    session, transport = link
    clean = _infer(session, 5)
    session.set_input(0, bytes([5]))
    session.run()
    before = session.stats.corrupt_frames + session.stats.timeouts
    # The host sees a bad CRC (or, when the damaged byte was the start marker, no frame at all) and asks
    # again; the device replays its cached reply.
    transport.on_read = _once(_flip_middle)
    assert session.get_output(0) == clean
    assert session.stats.corrupt_frames + session.stats.timeouts > before


def test_lost_reply_is_replayed_not_rerun(link: tuple[DeviceSession, HandlerTransport]) -> None:
    session, transport = link
    session.set_input(0, bytes([100]))
    session.run()
    want = session.get_output(0)
    before = session.stats.timeouts
    transport.on_read = _once(lambda data: b"")  # the whole first reply chunk vanishes
    assert session.get_output(0) == want
    assert session.stats.timeouts > before


def test_reboot_mid_session_is_detected(link: tuple[DeviceSession, HandlerTransport]) -> None:
    session, transport = link
    _infer(session, 1)
    # Power-cycle the emulated board under the open session: QEMU restarts from the flashed image.
    transport.handler.close_transport()
    transport.handler.open_transport(
        cm_server.CortexMHandler(transport.handler.project_dir).saved_option_values() | {"qemu_icount": True}
    )
    with pytest.raises(DeviceResetError):
        _infer(session, 1)
    session.open()  # a new session works on the rebooted board
    assert np.frombuffer(_infer(session, 1), np.int8).shape == (1,)


def test_board_that_dies_is_reported(link: tuple[DeviceSession, HandlerTransport]) -> None:
    session, transport = link
    qemu = transport.handler._transport
    assert qemu is not None and qemu.pid is not None
    os.kill(qemu.pid, signal.SIGKILL)  # the QEMU this test's handler started
    with pytest.raises(DeviceTransportClosedError, match="QEMU exited with status -9"):
        _infer(session, 3)
