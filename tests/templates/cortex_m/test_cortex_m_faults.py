"""The wire protocol's fault handling over the real QEMU UART pty: corrupted and lost frames in either
direction are retried and never change a result; a rebooted board is detected; a board that dies is
reported as such. Faults are injected in the bytes crossing the pty (the firmware is the real one)."""

from __future__ import annotations

import collections
import os
import random
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


class RandomDamage:
    """Seeded damage to chunks crossing the QEMU pty in both directions: a chunk dropped, a byte dropped,
    a bit flipped, a chunk sent twice. Counts what it did so the test can show the faults happened.

    The host writes whole frames but reads the pty in whatever pieces arrive (often a few bytes), so the
    damage rate is per byte: a fault every `bytes_per_fault` bytes on average, with its own random stream
    per direction (the read chunking, which depends on timing, does not perturb the write faults).
    """

    KINDS = ("drop_chunk", "drop_byte", "flip_bit", "duplicate")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.enabled = True
        self.counts: collections.Counter[str] = collections.Counter()

    def filter(self, direction: str, bytes_per_fault: float) -> Callable[[bytes], bytes]:
        rng = random.Random(f"{self.seed}-{direction}")
        per_byte = 1.0 / bytes_per_fault

        def apply(data: bytes) -> bytes:
            if not data or not self.enabled or rng.random() >= 1.0 - (1.0 - per_byte) ** len(data):
                return data
            kind = rng.choice(self.KINDS)
            self.counts[kind] += 1
            self.counts[direction] += 1
            i = rng.randrange(len(data))
            if kind == "drop_chunk":
                return b""
            if kind == "drop_byte":
                return data[:i] + data[i + 1 :]
            if kind == "flip_bit":
                return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
            return data + data

        return apply


def test_random_faults_and_power_cycles_never_give_a_wrong_output(compiled_mlf: Any, tmp_path: Path) -> None:
    """KWS over a damaged pty with the board power-cycled now and then: every inference ends with the
    exact reference output (after retries and, for a power cycle, a new session), never a wrong one."""
    require_toolchain()
    require_qemu()
    from tflite_micro.python.tflite_micro import runtime

    from tests.conftest import model_path

    kws = "kws_ref_model.tflite"
    handler = make_project(compiled_mlf(kws), tmp_path / "kws", "mps2_an386")
    reference = runtime.Interpreter.from_file(str(model_path(kws)))
    transport = HandlerTransport(handler)
    damage = RandomDamage(seed=11)
    # About 20 KB go to the board (490-byte inputs) and 3.5 KB come back over the test.
    transport.on_write = damage.filter("to_device", bytes_per_fault=2000)
    transport.on_read = damage.filter("from_device", bytes_per_fault=300)
    # run_timeout_sec: after the device ACKs a RUN the host waits this long for the result; a lost
    # result costs that much before the retry, so keep it near the real run time (~50 ms of wall time).
    session = DeviceSession(
        transport, reply_timeout_sec=0.3, run_timeout_sec=2.0, max_attempts=10, transport_name="QEMU pty"
    )
    rng = np.random.default_rng(3)
    inferences, power_cycles, resets, wrong = 24, 0, 0, 0
    try:
        session.open()
        for i in range(inferences):
            x = rng.integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int16).astype(np.int8)
            reference.set_input(x, 0)
            reference.invoke()
            want = reference.get_output(0).reshape(-1).tobytes()
            cycle = i % 8 == 3
            while True:
                try:
                    session.set_input(0, x.tobytes())
                    if cycle:  # the board restarts between SET_INPUT and RUN: its inputs are gone
                        handler.close_transport()
                        handler.open_transport(handler.saved_option_values() | {"qemu_icount": True})
                        power_cycles, cycle = power_cycles + 1, False
                    session.run()
                    got = session.get_output(0)
                except DeviceResetError:
                    resets += 1
                    session.open()
                    continue
                wrong += got != want
                break
        damage.enabled = False
        stats = session.stats
    finally:
        session.close()
    print(f"\nfaults {dict(damage.counts)}, power cycles {power_cycles}, resets seen {resets}, {stats}")
    assert wrong == 0
    assert resets == power_cycles == 3
    assert sum(damage.counts[k] for k in RandomDamage.KINDS) >= 8
    assert damage.counts["to_device"] >= 2 and damage.counts["from_device"] >= 2
    assert stats.retransmissions >= 5  # recovered by the protocol's retries, not by luck
