"""Replays the doc's session vectors against the REAL crt_host firmware (reference device, n = 4).

The C unit test replays the same vectors against the server linked into a test program; this one goes
through the whole product path instead: Python framing -> pipes -> crt_host main loop -> glue -> runtime.
"""

from __future__ import annotations

import time

import pytest
from device_vectors import load_vectors, matches, parse_hex
from tvmc_micro.device.framing import FrameDecoder, FrameEvent, encode_frame
from tvmc_micro.device.process import ProcessTransport
from tvmc_micro.device.protocol import Msg

SESSIONS = load_vectors("session")


def _packets(
    transport: ProcessTransport, decoder: FrameDecoder, want: int, timeout: float = 5.0
) -> list[bytes]:
    """Reads until `want` non-BOOT/LOG packets arrived, then a short grace period for any extra one."""
    packets: list[bytes] = []
    deadline = time.monotonic() + timeout
    grace_until = None
    while True:
        now = time.monotonic()
        if len(packets) >= want and grace_until is None:
            grace_until = now + 0.05
        limit = grace_until if grace_until is not None else deadline
        if now >= limit:
            return packets
        try:
            data = transport.read(4096, limit - now)
        except Exception:  # IoTimeoutError: nothing more within the limit
            return packets
        for frame in decoder.feed(data):
            assert frame.event is FrameEvent.OK, f"the firmware sent a damaged frame: {frame}"
            if frame.payload[0] not in (Msg.BOOT, Msg.LOG):
                packets.append(frame.payload)


@pytest.mark.parametrize("vector", SESSIONS, ids=lambda v: v.name)
def test_session_vector_against_firmware(vector, device4: ProcessTransport) -> None:  # type: ignore[no-untyped-def]
    decoder = FrameDecoder()
    lines = list(vector.lines)
    exchanges = 0
    i = 0
    while i < len(lines):
        key, value = lines[i]
        assert key == ">", f"line {i} of {vector.name} should be a request"
        expected = []
        i += 1
        while i < len(lines) and lines[i][0] == "<":
            expected.append(parse_hex(lines[i][1]))
            i += 1
        device4.write(encode_frame(parse_hex(value)[0]), 5.0)
        got = _packets(device4, decoder, len(expected))
        assert len(got) == len(expected), f"{vector.name}: request {value!r} got {len(got)} packets"
        for packet, (want, mask) in zip(got, expected, strict=True):
            assert matches(packet, want, mask), f"{vector.name}: got {packet.hex(' ')}"
        exchanges += 1
    assert exchanges >= 5
