"""Packet types, status codes and body layouts of the device protocol.

The Python twin of runtime/include/tvmrt/protocol.h.

Every packet: ``type u8 | seq u16 LE | body``. A reply's type is the request's | 0x80 and its body starts
with a status byte; an error reply's status is followed by a detail u32 LE. docs/wire-protocol.md is the
normative description.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 0
REPLY_FLAG = 0x80
HEADER = struct.Struct("<BH")
REPLY_HEADER = struct.Struct("<BHB")


class Msg(enum.IntEnum):
    HELLO = 0x01
    INFO = 0x02
    TENSOR_INFO = 0x03
    OP_INFO = 0x04
    SET_INPUT = 0x05
    RUN = 0x06
    GET_OUTPUT = 0x07
    TIME_RUNS = 0x08
    PROFILE = 0x09
    OP_TIMES = 0x0A
    RESET = 0x0B
    # Unsolicited device packets.
    BOOT = 0xF0
    LOG = 0xF1
    NACK = 0xF2
    ACK = 0xF3


class Status(enum.IntEnum):
    OK = 0
    UNKNOWN_COMMAND = 1
    BAD_LENGTH = 2
    BAD_INDEX = 3
    OUT_OF_RANGE = 4
    NO_SESSION = 5
    BAD_SEQUENCE = 6
    MODEL_ERROR = 7
    NO_PROFILE = 8
    VERSION_MISMATCH = 9
    TOO_LARGE = 10


# Bytes a request or reply spends around its data; chunk sizes are derived from these.
SET_INPUT_OVERHEAD = HEADER.size + 5  # index u8, offset u32
GET_OUTPUT_REPLY_OVERHEAD = REPLY_HEADER.size
OP_TIMES_REPLY_OVERHEAD = REPLY_HEADER.size + 2


def packet(msg: int, seq: int, body: bytes = b"") -> bytes:
    return HEADER.pack(msg, seq & 0xFFFF) + body


def hello_body(host_nonce: int, host_max_payload: int, major: int = PROTOCOL_MAJOR,
               minor: int = PROTOCOL_MINOR) -> bytes:
    return struct.pack("<BBIH", major, minor, host_nonce, host_max_payload)


def tensor_info_body(kind: int, index: int) -> bytes:
    return struct.pack("<BB", kind, index)


def set_input_body(index: int, offset: int, data: bytes) -> bytes:
    return struct.pack("<BI", index, offset) + data


def get_output_body(index: int, offset: int, length: int) -> bytes:
    return struct.pack("<BIH", index, offset, length)


class MalformedReply(ValueError):
    """A reply body shorter or longer than its layout (caught and reported by the session)."""


class _Reader:
    """Walks a reply body; any overrun or leftover byte is a malformed reply, never silently accepted."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        st = struct.Struct("<" + fmt)
        if self.pos + st.size > len(self.data):
            raise MalformedReply(f"reply body ends after {len(self.data)} bytes, expected more")
        values = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return values

    def name(self) -> str:
        (n,) = self.take("B")
        if self.pos + n > len(self.data):
            raise MalformedReply("a name in the reply runs past its end")
        text = self.data[self.pos : self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return text

    def done(self) -> None:
        if self.pos != len(self.data):
            raise MalformedReply(f"reply body has {len(self.data) - self.pos} unexpected trailing bytes")


@dataclass(frozen=True)
class HelloReply:
    major: int
    minor: int
    host_nonce: int
    device_nonce: int
    max_request: int  # largest request payload the device accepts
    max_reply: int  # largest reply payload the device will send in this session
    model_name: str
    signature: str


def parse_hello(body: bytes) -> HelloReply:
    r = _Reader(body)
    major, minor, host_nonce, device_nonce, max_request, max_reply = r.take("BBIIHH")
    name = r.name()
    signature = r.name()
    r.done()
    return HelloReply(major, minor, host_nonce, device_nonce, max_request, max_reply, name, signature)


# What the device's timer counts (INFO's timer_kind; runtime/include/tvmrt/platform.h).
TIMER_KIND_TIMER = 0
TIMER_KIND_CORE_CYCLES = 1


@dataclass(frozen=True)
class InfoReply:
    num_inputs: int
    num_outputs: int
    num_ops: int
    timer_hz: int
    timer_kind: int = TIMER_KIND_TIMER


def parse_info(body: bytes) -> InfoReply:
    """INFO's reply; runtimes before timer_kind end after timer_hz (8 bytes: a plain timer)."""
    r = _Reader(body)
    num_inputs, num_outputs, num_ops, timer_hz = r.take("BBHI")
    kind = r.take("B")[0] if len(body) > 8 else TIMER_KIND_TIMER
    r.done()
    if kind not in (TIMER_KIND_TIMER, TIMER_KIND_CORE_CYCLES):
        raise MalformedReply(f"INFO names an unknown timer kind {kind}")
    return InfoReply(num_inputs, num_outputs, num_ops, timer_hz, kind)


# DLPack (code, bits) -> numpy-style dtype names.
_DTYPE_NAMES = {(0, 8): "int8", (0, 16): "int16", (0, 32): "int32", (0, 64): "int64", (1, 8): "uint8",
                (1, 16): "uint16", (1, 32): "uint32", (1, 64): "uint64", (2, 16): "float16",
                (2, 32): "float32", (2, 64): "float64", (4, 16): "bfloat16", (6, 8): "bool"}


def dtype_name(code: int, bits: int) -> str:
    return _DTYPE_NAMES.get((code, bits), f"dlpack(code={code},bits={bits})")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    size_bytes: int


def parse_tensor_info(body: bytes) -> TensorInfo:
    r = _Reader(body)
    code, bits, ndim = r.take("BBB")
    shape = r.take(f"{ndim}I") if ndim else ()
    (size,) = r.take("I")
    name = r.name()
    r.done()
    return TensorInfo(name, dtype_name(code, bits), tuple(shape), size)


def parse_op_info(body: bytes) -> str:
    r = _Reader(body)
    name = r.name()
    r.done()
    return name


def parse_run(body: bytes) -> int:
    r = _Reader(body)
    (ticks,) = r.take("Q")
    r.done()
    return ticks


@dataclass(frozen=True)
class TimeRunsReply:
    count: int
    total_ticks: int
    min_ticks: int
    max_ticks: int


def parse_time_runs(body: bytes) -> TimeRunsReply:
    r = _Reader(body)
    values = r.take("IQQQ")
    r.done()
    return TimeRunsReply(*values)


def parse_profile(body: bytes) -> tuple[int, int]:
    """(number of operators, total ticks of the profiled run)."""
    r = _Reader(body)
    num_ops, total = r.take("HQ")
    r.done()
    return num_ops, total


def parse_op_times(body: bytes, expected: int) -> tuple[int, ...]:
    r = _Reader(body)
    (count,) = r.take("H")
    if count != expected:
        raise MalformedReply(f"asked for {expected} operator times, got {count}")
    ticks = r.take(f"{count}Q") if count else ()
    r.done()
    return tuple(ticks)
