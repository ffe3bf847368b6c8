"""Framing of the device wire protocol, the Python twin of runtime/src/frame.c.

``0x7E | esc(length u16 LE) | esc(payload) | esc(crc16 u16 LE)``; the CRC is CRC-16/CCITT-FALSE over the
length bytes and the payload; 0x7E/0x7D inside the escaped region are sent as 0x7D, byte ^ 0x20.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass

START = 0x7E
ESCAPE = 0x7D
ESCAPE_XOR = 0x20


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_TABLE = _make_table()


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, unreflected, no xorout); check value 0x29B1."""
    for byte in bytes(data):
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


_ESCAPES = {START: bytes([ESCAPE, START ^ ESCAPE_XOR]), ESCAPE: bytes([ESCAPE, ESCAPE ^ ESCAPE_XOR])}


def _escape(data: bytes) -> bytes:
    if START not in data and ESCAPE not in data:
        return data
    # Escape 0x7D first so the 0x7D bytes introduced for 0x7E are not escaped again.
    return data.replace(b"\x7d", _ESCAPES[ESCAPE]).replace(b"\x7e", _ESCAPES[START])


def encode_frame(payload: bytes | bytearray | memoryview) -> bytes:
    """One frame carrying `payload` (at most 65535 bytes)."""
    body = bytes(payload)
    if len(body) > 0xFFFF:
        raise ValueError(f"payload of {len(body)} bytes exceeds the 65535-byte frame limit")
    header = struct.pack("<H", len(body))
    crc = crc16(body, crc16(header))
    return bytes([START]) + _escape(header + body + struct.pack("<H", crc))


class FrameEvent(enum.IntEnum):
    """Decoder outcomes; the numbers match tvmrt_frame_event_t and travel in NACK packets."""

    OK = 1
    BAD_CRC = 2
    TOO_LONG = 3
    TRUNCATED = 4
    BAD_ESCAPE = 5


@dataclass(frozen=True)
class DecodedFrame:
    event: FrameEvent
    payload: bytes = b""


class FrameDecoder:
    """Turns a byte stream into frames and framing errors, resynchronising on every start marker."""

    def __init__(self, max_payload: int = 0xFFFF) -> None:
        self.max_payload = max_payload
        self._in_frame = False
        self._escaped = False
        self._buf = bytearray()  # unescaped bytes of the current frame: length, payload, crc
        self._length: int | None = None
        self.discarded = 0  # bytes outside any frame (line noise, stray output)

    def feed(self, data: bytes) -> Iterator[DecodedFrame]:
        """Push bytes; yields each complete frame (OK) and each framing error, in stream order."""
        for byte in data:
            event = self._push(byte)
            if event is not None:
                yield event

    def _push(self, byte: int) -> DecodedFrame | None:
        if byte == START:
            interrupted = self._in_frame and len(self._buf) > 0
            self._start()
            return DecodedFrame(FrameEvent.TRUNCATED) if interrupted else None
        if not self._in_frame:
            self.discarded += 1
            return None
        if self._escaped:
            self._escaped = False
            byte ^= ESCAPE_XOR
            if byte not in (START, ESCAPE):
                self._in_frame = False
                return DecodedFrame(FrameEvent.BAD_ESCAPE)
        elif byte == ESCAPE:
            self._escaped = True
            return None
        self._buf.append(byte)
        if self._length is None:
            if len(self._buf) == 2:
                self._length = self._buf[0] | (self._buf[1] << 8)
                if self._length > self.max_payload:
                    self._in_frame = False
                    return DecodedFrame(FrameEvent.TOO_LONG)
            return None
        if len(self._buf) < 2 + self._length + 2:
            return None
        self._in_frame = False
        body = bytes(self._buf[: 2 + self._length])
        wire_crc = self._buf[-2] | (self._buf[-1] << 8)
        if crc16(body) != wire_crc:
            return DecodedFrame(FrameEvent.BAD_CRC)
        return DecodedFrame(FrameEvent.OK, body[2:])

    def _start(self) -> None:
        self._in_frame = True
        self._escaped = False
        self._buf.clear()
        self._length = None
