"""Framing of the device wire protocol, the Python twin of runtime/src/frame.c.

``0x7E | esc(length u16 LE) | esc(payload) | esc(crc16 u16 LE)``; the CRC is CRC-16/CCITT-FALSE over the
length bytes and the payload; 0x7E/0x7D inside the escaped region are sent as 0x7D, byte ^ 0x20.
"""

from __future__ import annotations

import binascii
import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass

START = 0x7E
ESCAPE = 0x7D
ESCAPE_XOR = 0x20


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, unreflected, no xorout); check value 0x29B1.

    binascii.crc_hqx is exactly this polynomial, unreflected, with a caller-chosen initial value.
    """
    return binascii.crc_hqx(bytes(data), crc)


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
    """Turns a byte stream into frames and framing errors, resynchronising on every start marker.

    Works on slices (bytes.find) rather than byte by byte, so large frames decode at memory speed.
    """

    def __init__(self, max_payload: int = 0xFFFF) -> None:
        self.max_payload = max_payload
        self._in_frame = False
        self._escaped = False
        self._buf = bytearray()  # unescaped bytes of the current frame: length, payload, crc
        self._length: int | None = None
        self.discarded = 0  # bytes outside any frame (line noise, stray output)

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[DecodedFrame]:
        """Push bytes; yields each complete frame (OK) and each framing error, in stream order."""
        raw = bytes(data)
        pos, n = 0, len(raw)
        while pos < n:
            if not self._in_frame:
                start = raw.find(_START_BYTE, pos)
                if start < 0:
                    self.discarded += n - pos
                    return
                self.discarded += start - pos
                self._start()
                pos = start + 1
                continue
            # Bytes up to the next start marker belong to this frame (or, past its end, to nobody).
            marker = raw.find(_START_BYTE, pos)
            end = n if marker < 0 else marker
            event, pos = self._consume(raw, pos, end)
            if event is not None:
                yield event
            if marker >= 0 and pos >= marker:
                if self._in_frame and self._buf:
                    yield DecodedFrame(FrameEvent.TRUNCATED)
                self._start()
                pos = marker + 1

    def _consume(self, raw: bytes, pos: int, end: int) -> tuple[DecodedFrame | None, int]:
        """Unescape raw[pos:end] into the frame until it is complete; returns (event, new position)."""
        buf = self._buf
        while pos < end:
            need = 2 - len(buf) if self._length is None else 4 + self._length - len(buf)
            if self._escaped:
                self._escaped = False
                byte = raw[pos] ^ ESCAPE_XOR
                pos += 1
                if byte not in (START, ESCAPE):
                    self._in_frame = False
                    return DecodedFrame(FrameEvent.BAD_ESCAPE), pos
                buf.append(byte)
            else:
                window = min(end, pos + need)
                esc = raw.find(_ESCAPE_BYTE, pos, window)
                if esc < 0:
                    buf += raw[pos:window]
                    pos = window
                else:
                    buf += raw[pos:esc]
                    pos = esc + 1
                    self._escaped = True
            if self._length is None and len(buf) >= 2:
                self._length = buf[0] | (buf[1] << 8)
                if self._length > self.max_payload:
                    self._in_frame = False
                    return DecodedFrame(FrameEvent.TOO_LONG), pos
            if self._length is not None and len(buf) == 4 + self._length:
                self._in_frame = False
                body = bytes(buf[:-2])
                if crc16(body) != buf[-2] | (buf[-1] << 8):
                    return DecodedFrame(FrameEvent.BAD_CRC), pos
                return DecodedFrame(FrameEvent.OK, body[2:]), pos
        return None, pos

    def _start(self) -> None:
        self._in_frame = True
        self._escaped = False
        self._buf = bytearray()
        self._length = None


_START_BYTE = bytes([START])
_ESCAPE_BYTE = bytes([ESCAPE])
