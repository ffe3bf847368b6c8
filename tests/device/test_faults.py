"""Fault injection over REAL pipes to a real crt_host firmware process.

A FaultyLink sits between DeviceSession and the firmware's stdin/stdout and, with a seeded RNG, drops
whole chunks or single bytes, flips bits, duplicates chunks and delays them (some beyond the reply
timeout), in both directions; every so often it power-cycles the device between SET_INPUT and RUN.
Every inference must end in the exact expected output (after retries) or a clear error
(DeviceResetError for the power cycles), never in a wrong output. The counts are asserted.
"""

from __future__ import annotations

import collections
import random
import time
from pathlib import Path

import pytest
from tvmc_micro.device import DeviceResetError, DeviceSession, DeviceTimeoutError
from tvmc_micro.device.process import ProcessTransport
from tvmc_micro.device.reference_model import build_host_firmware, expected_output, write_tiny_mlf

N = 600  # tensor bytes: 3 chunks each way with 256-byte packets


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    mlf = write_tiny_mlf(root / "mlf", n=N)
    return build_host_firmware(mlf, root / "firmware", extra_flags=("-DCRT_HOST_MAX_PAYLOAD=256",))


class FaultyLink:
    """A C3 transport that damages traffic to and from a real firmware process."""

    KINDS = ("drop_chunk", "drop_byte", "flip_bit", "duplicate", "delay", "long_delay")

    def __init__(self, firmware: Path, seed: int, rate: float, long_delay_sec: float) -> None:
        self.firmware = firmware
        self.rng = random.Random(seed)
        self.rate = rate
        self.long_delay_sec = long_delay_sec
        self.enabled = True
        self.faults: collections.Counter[str] = collections.Counter()
        self.device = ProcessTransport([str(firmware)])
        self._rx = bytearray()

    def power_cycle(self) -> None:
        self.device.kill()
        self.device = ProcessTransport([str(self.firmware)])
        self._rx.clear()
        self.faults["power_cycle"] += 1

    def _damage(self, data: bytes, direction: str) -> bytes:
        if not self.enabled or self.rng.random() >= self.rate:
            return data
        kind = self.rng.choice(self.KINDS)
        self.faults[kind] += 1
        self.faults[direction] += 1
        if kind == "drop_chunk":
            return b""
        if kind == "drop_byte":
            i = self.rng.randrange(len(data))
            return data[:i] + data[i + 1 :]
        if kind == "flip_bit":
            i = self.rng.randrange(len(data))
            return data[:i] + bytes([data[i] ^ (1 << self.rng.randrange(8))]) + data[i + 1 :]
        if kind == "duplicate":
            return data + data
        time.sleep(self.rng.uniform(0.01, 0.05) if kind == "delay" else self.long_delay_sec)
        return data

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        damaged = self._damage(data, "to_device")
        if damaged:
            self.device.write(damaged, timeout_sec)

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while not self._rx:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._rx += self._damage(self.device.read(4096, left), "from_device")
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def close(self) -> None:
        self.device.close()


@pytest.mark.slow
def test_faults_never_yield_a_wrong_output(firmware: Path) -> None:
    link = FaultyLink(firmware, seed=2024, rate=0.12, long_delay_sec=0.3)
    session = DeviceSession(link, reply_timeout_sec=0.2, max_attempts=10, open_timeout_sec=10.0)
    rng = random.Random(7)
    compared = wrong = resets_detected = timeouts = 0
    inferences = 60
    session.open()
    for i in range(inferences):
        x = bytes(rng.randrange(256) for _ in range(N))
        # Power-cycle on some inferences, between SET_INPUT and RUN (mid-session, inputs lost).
        power_cycle = i % 12 == 5
        while True:
            try:
                session.set_input(0, x)
                if power_cycle:
                    link.power_cycle()
                    power_cycle = False
                session.run()
                y = session.get_output(0)
            except DeviceResetError:
                resets_detected += 1
                session.open()
                continue
            except DeviceTimeoutError:
                timeouts += 1
                session.open()
                continue
            compared += 1
            wrong += y != expected_output(x)
            break
    link.enabled = False
    stats = session.stats
    session.close()
    injected = sum(link.faults[k] for k in FaultyLink.KINDS)
    print(f"\nfaults injected: {dict(link.faults)}; outputs compared {compared}, wrong {wrong}; "
          f"resets detected {resets_detected}; timeouts {timeouts}; {stats}")
    assert wrong == 0
    assert compared == inferences
    assert resets_detected == link.faults["power_cycle"] == 5
    assert injected >= 60
    assert all(link.faults[k] >= 3 for k in FaultyLink.KINDS), link.faults
    assert link.faults["to_device"] >= 10 and link.faults["from_device"] >= 10
    # The damage really reached the protocol and was recovered by retries, not by luck.
    assert stats.retransmissions >= 20
    assert stats.corrupt_frames + stats.nacks >= 10
    assert stats.stale_packets >= 5
