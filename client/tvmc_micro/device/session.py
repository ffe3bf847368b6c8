"""The host side of the device session: handshake, stop-and-wait requests with bounded retries, commands.

Works over any transport with ``write(data, timeout_sec)``, ``read(n, timeout_sec)`` and ``close()``
(contract C3): a child's pipes, a pty, a serial port, or the Project API's read/write_transport.

Reliability rules (docs/wire-protocol.md, section 3, "Sequence numbers and retries"):
- every request carries a sequence number; a reply is accepted only with the right type, seq and CRC;
- a timeout, a NACK from the device or a corrupted frame from it makes the host send the same request
  again (same seq), at most ``max_attempts`` times, waiting a little longer before each resend
  (exponential back-off, bounded) so a burst of noise does not use up every attempt; the device replays
  its cached reply for a repeated seq, so nothing executes twice;
- tensor chunks (SET_INPUT data, GET_OUTPUT lengths) shrink after a failed attempt: on a noisy line a
  long frame is almost never received intact (at 0.5 % byte errors a 500-byte frame survives 8 % of
  the time, a 60-byte one 70 %). A shrunk retry keeps its seq and asks for a prefix of what the first
  try asked for, so whichever version the device executed, the bytes it reports or wrote are right;
  later chunks use the size that worked and grow back after a run of clean transfers;
- a device that lost the session (NO_SESSION) or announced a new boot nonce raises DeviceResetError.
"""

from __future__ import annotations

import collections
import logging
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from microtvm_api.errors import IoTimeoutError, TransportClosedError

from tvmc_micro.device import protocol as P
from tvmc_micro.device.errors import (
    DeviceCommandError,
    DeviceError,
    DeviceProtocolError,
    DeviceResetError,
    DeviceTimeoutError,
    DeviceTransportClosedError,
)
from tvmc_micro.device.framing import DecodedFrame, FrameDecoder, FrameEvent, encode_frame

_log = logging.getLogger("tvmc_micro.device")

_LOG_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
_LONG_COMMANDS = frozenset({P.Msg.RUN, P.Msg.TIME_RUNS, P.Msg.PROFILE})
_ACKED = object()  # _await's answer when a long command was acknowledged (keep waiting, do not resend)
_STATUS_TEXT = {
    P.Status.UNKNOWN_COMMAND: "the firmware does not know this command",
    P.Status.BAD_LENGTH: "the request body had the wrong length",
    P.Status.BAD_INDEX: "no such tensor or operator index",
    P.Status.OUT_OF_RANGE: "offset/size outside the tensor or an invalid count",
    P.Status.MODEL_ERROR: "the model's run function returned an error",
    P.Status.NO_PROFILE: "no per-operator profile is available",
    P.Status.TOO_LARGE: "the reply would not fit the negotiated packet size",
}


class Transport(Protocol):
    def write(self, data: bytes, timeout_sec: float | None) -> None: ...

    def read(self, n: int, timeout_sec: float | None) -> bytes: ...

    def close(self) -> None: ...


MIN_CHUNK_BYTES = 16  # tensor chunks never shrink below this (frame overhead is ~13 bytes)
GROW_AFTER_CLEAN = 4  # clean chunk transfers in a row before the chunk size doubles again


@dataclass
class SessionStats:
    """What the session saw on the link; tests assert on these, `tvmc -v` can print them."""

    requests: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    corrupt_frames: int = 0  # frames from the device that failed CRC, length or escaping checks
    nacks: int = 0  # the device reported a corrupt request frame
    chunk_shrinks: int = 0  # tensor chunks made smaller after a failed attempt
    backoff_sec: float = 0.0  # time spent waiting between attempts
    stale_packets: int = 0  # well-formed packets answering nothing outstanding (late or duplicated)
    log_messages: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass(frozen=True)
class DeviceInfo:
    model_name: str
    signature: str
    protocol_version: tuple[int, int]
    max_request: int
    max_reply: int
    timer_hz: int
    inputs: tuple[P.TensorInfo, ...]
    outputs: tuple[P.TensorInfo, ...]
    op_names: tuple[str, ...]
    timer_kind: int = P.TIMER_KIND_TIMER  # what the timer counts (INFO; docs/wire-protocol.md)


@dataclass(frozen=True)
class TimingResult:
    count: int
    total_ticks: int
    min_ticks: int
    max_ticks: int
    timer_hz: int

    @property
    def mean_sec(self) -> float:
        return self.total_ticks / self.count / self.timer_hz

    @property
    def min_sec(self) -> float:
        return self.min_ticks / self.timer_hz

    @property
    def max_sec(self) -> float:
        return self.max_ticks / self.timer_hz


@dataclass(frozen=True)
class OpProfile:
    op_names: tuple[str, ...]
    op_ticks: tuple[int, ...]
    total_ticks: int
    timer_hz: int
    seconds: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seconds", tuple(t / self.timer_hz for t in self.op_ticks))


LogHandler = Callable[[int, str], None]


def _default_log_handler(level: int, text: str) -> None:
    _log.log(_LOG_LEVELS.get(level, logging.INFO), "device: %s", text)


class DeviceSession:
    """One session with the firmware's RPC server over `transport` (which the session then owns).

    reply_timeout_sec: how long to wait for a reply (or the ACK of a long command) before resending;
    run_timeout_sec: how long an acknowledged run/time/profile may take; max_attempts: sends per request;
    open_timeout_sec: total time to wait for the handshake (a device may still be booting);
    backoff_sec / max_backoff_sec: the pause before the first resend of a request, doubled before each
    further one up to the maximum (so 8 attempts wait at most ~0.25 s in all by default).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        reply_timeout_sec: float = 1.0,
        run_timeout_sec: float = 120.0,
        max_attempts: int = 8,
        open_timeout_sec: float = 10.0,
        host_max_payload: int = 0xFFFF,
        on_log: LogHandler | None = None,
        transport_name: str = "the device transport",
        backoff_sec: float = 0.002,
        max_backoff_sec: float = 0.128,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= backoff_sec <= max_backoff_sec:
            raise ValueError("backoff_sec must be within 0..max_backoff_sec")
        if not 64 <= host_max_payload <= 0xFFFF:
            raise ValueError("host_max_payload must be within 64..65535")
        self.transport = transport
        self.reply_timeout_sec = reply_timeout_sec
        self.run_timeout_sec = run_timeout_sec
        self.max_attempts = max_attempts
        self.backoff_sec = backoff_sec
        self.max_backoff_sec = max_backoff_sec
        self.open_timeout_sec = open_timeout_sec
        self.host_max_payload = host_max_payload
        self.on_log = on_log or _default_log_handler
        self.transport_name = transport_name
        self.stats = SessionStats()
        self.hello: P.HelloReply | None = None
        self._decoder = FrameDecoder(max_payload=0xFFFF)
        self._pending: collections.deque[DecodedFrame] = collections.deque()
        self._seq = 0
        self._info: DeviceInfo | None = None
        self._busy_estimate_sec = 0.0  # duration of the last acknowledged command, for polling
        self._chunk_cap: int | None = None  # tensor chunk size that last worked (None: the largest)
        self._clean_chunks = 0  # chunk transfers in a row that needed no retry

    # ---- session ---------------------------------------------------------------------------------

    def open(self) -> P.HelloReply:
        """Handshake: a fresh host nonce and starting seq; returns what the device said about itself."""
        self.hello = None
        self._info = None
        nonce = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        # The version is read at call time (not bound as a default) so one place decides what we speak.
        body = P.hello_body(nonce, self.host_max_payload, P.PROTOCOL_MAJOR, P.PROTOCOL_MINOR)
        frame = encode_frame(P.packet(P.Msg.HELLO, self._seq, body))
        give_up = time.monotonic() + self.open_timeout_sec
        attempts = 0
        while True:
            attempts += 1
            self._send(frame, retransmission=attempts > 1)
            deadline = min(give_up, time.monotonic() + self.reply_timeout_sec)
            reply = self._await(P.Msg.HELLO, self._seq, deadline, hello_nonce=nonce)
            if isinstance(reply, bytes):
                break
            if time.monotonic() >= give_up:
                raise DeviceTimeoutError(
                    f"no handshake from the device on {self.transport_name} after {attempts} attempts "
                    f"over {self.open_timeout_sec:.1f} s",
                    "check that the firmware is flashed and running (tvmc micro flash PROJECT_DIR), that "
                    "this is the right port and baud rate, and that nothing else is reading the port",
                )
        hello = P.parse_hello(reply)
        self.hello = hello
        _log.debug("session open: model %s signature %s, max request %d, max reply %d", hello.model_name,
                   hello.signature, hello.max_request, hello.max_reply)
        return hello

    def close(self) -> None:
        """Close the transport (for a host firmware process that also ends it)."""
        self.transport.close()

    def __enter__(self) -> DeviceSession:
        if self.hello is None:
            self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- commands --------------------------------------------------------------------------------

    def info(self) -> DeviceInfo:
        """The model the firmware serves: name, signature, tensors, operators, timer rate (cached)."""
        if self._info is not None:
            return self._info
        hello = self._require_open()
        info = P.parse_info(self._request(P.Msg.INFO))
        inputs = tuple(
            P.parse_tensor_info(self._request(P.Msg.TENSOR_INFO, P.tensor_info_body(0, i)))
            for i in range(info.num_inputs)
        )
        outputs = tuple(
            P.parse_tensor_info(self._request(P.Msg.TENSOR_INFO, P.tensor_info_body(1, i)))
            for i in range(info.num_outputs)
        )
        ops = tuple(
            P.parse_op_info(self._request(P.Msg.OP_INFO, struct.pack("<H", i))) for i in range(info.num_ops)
        )
        self._info = DeviceInfo(
            model_name=hello.model_name,
            signature=hello.signature,
            protocol_version=(hello.major, hello.minor),
            max_request=hello.max_request,
            max_reply=hello.max_reply,
            timer_hz=info.timer_hz,
            inputs=inputs,
            outputs=outputs,
            op_names=ops,
            timer_kind=info.timer_kind,
        )
        return self._info

    def set_input(self, index: int, data: bytes | bytearray | memoryview) -> None:
        """Write the whole input tensor `index` (raw bytes, exactly its size), in negotiated-size chunks."""
        info = self.info()
        if not 0 <= index < len(info.inputs):
            raise DeviceError(f"input index {index} out of range: the model has {len(info.inputs)} inputs")
        tensor = info.inputs[index]
        raw = bytes(data)
        if len(raw) != tensor.size_bytes:
            raise DeviceError(
                f"input {tensor.name!r} needs {tensor.size_bytes} bytes "
                f"({tensor.dtype}{list(tensor.shape)}), got {len(raw)}"
            )
        largest = info.max_request - P.SET_INPUT_OVERHEAD
        offset = 0
        while offset < len(raw):

            def body(n: int, offset: int = offset) -> bytes:
                return P.set_input_body(index, offset, raw[offset : offset + n])

            # Whichever of the versions sent the device executed, it wrote at least the last (shortest) one.
            _, sent = self._chunk_request(P.Msg.SET_INPUT, body, min(largest, len(raw) - offset), largest)
            offset += sent[-1]

    def run(self) -> int:
        """Run the model once; returns the device timer ticks it took."""
        return P.parse_run(self._request(P.Msg.RUN))

    def get_output(self, index: int) -> bytes:
        """Read the whole output tensor `index` as raw bytes."""
        info = self.info()
        if not 0 <= index < len(info.outputs):
            raise DeviceError(f"output index {index} out of range: the model has {len(info.outputs)} outputs")
        size = info.outputs[index].size_bytes
        largest = min(info.max_reply - P.GET_OUTPUT_REPLY_OVERHEAD, 0xFFFF)
        parts = []
        offset = 0
        while offset < size:

            def body(n: int, offset: int = offset) -> bytes:
                return P.get_output_body(index, offset, n)

            part, asked = self._chunk_request(P.Msg.GET_OUTPUT, body, min(largest, size - offset), largest)
            # A shrunk retry shares the seq: the device may answer any version sent, each one a prefix
            # of the first, all starting at `offset`; any of those lengths is good data.
            if not asked[-1] <= len(part) <= asked[0] or len(part) not in asked:
                raise DeviceProtocolError(
                    f"asked for {asked[-1]} output bytes at offset {offset}, got {len(part)}"
                )
            parts.append(part)
            offset += len(part)
        return b"".join(parts)

    def time_runs(self, count: int) -> TimingResult:
        """Run the model `count` times back to back, timed by the device's own timer."""
        if count < 1:
            raise ValueError("count must be at least 1")
        reply = P.parse_time_runs(self._request(P.Msg.TIME_RUNS, struct.pack("<I", count)))
        return TimingResult(reply.count, reply.total_ticks, reply.min_ticks, reply.max_ticks,
                            self.info().timer_hz)

    def profile_ops(self) -> OpProfile:
        """One run with per-operator timing (the firmware must be built with -DTVMGEN_PROFILE)."""
        info = self.info()
        num_ops, total = P.parse_profile(self._request(P.Msg.PROFILE))
        if num_ops != len(info.op_names):
            raise DeviceProtocolError(
                f"profile has {num_ops} operators, the device listed {len(info.op_names)}"
            )
        per_chunk = (info.max_reply - P.OP_TIMES_REPLY_OVERHEAD) // 8
        ticks: list[int] = []
        for first in range(0, num_ops, per_chunk):
            n = min(per_chunk, num_ops - first)
            ticks.extend(P.parse_op_times(self._request(P.Msg.OP_TIMES, struct.pack("<HH", first, n)), n))
        return OpProfile(info.op_names, tuple(ticks), total, info.timer_hz)

    def reset(self) -> P.HelloReply:
        """Put the device back to its power-on state (inputs cleared) and open a new session."""
        self._request(P.Msg.RESET)
        return self.open()

    # ---- request machinery -----------------------------------------------------------------------

    def _require_open(self) -> P.HelloReply:
        if self.hello is None:
            raise DeviceError("the device session is not open", "call open() first")
        return self.hello

    def _chunk_request(
        self, msg: P.Msg, body: Callable[[int], bytes], want: int, largest: int
    ) -> tuple[bytes, list[int]]:
        """One tensor-chunk request of up to `want` bytes, shrunk on failed attempts (same seq, a prefix
        each time). Returns the reply and the sizes sent, largest first."""
        sizes = [want if self._chunk_cap is None else min(want, self._chunk_cap)]

        def shrink() -> bytes | None:
            if sizes[-1] <= MIN_CHUNK_BYTES:
                return None
            sizes.append(max(MIN_CHUNK_BYTES, sizes[-1] // 2))
            self.stats.chunk_shrinks += 1
            return body(sizes[-1])

        retransmissions = self.stats.retransmissions
        reply = self._request(msg, body(sizes[0]), shrink=shrink)
        if self.stats.retransmissions > retransmissions:
            self._clean_chunks = 0
            if len(sizes) > 1:
                self._chunk_cap = sizes[-1]
        elif self._chunk_cap is not None:
            self._clean_chunks += 1
            if self._clean_chunks >= GROW_AFTER_CLEAN:
                self._clean_chunks = 0
                grown = self._chunk_cap * 2
                self._chunk_cap = None if grown >= largest else grown
        return reply, sizes

    def _back_off(self, attempt: int) -> None:
        """Pause before sending attempt number `attempt` (>= 2): backoff_sec, doubling, bounded."""
        delay = min(self.max_backoff_sec, self.backoff_sec * 2 ** (attempt - 2))
        if delay > 0:
            time.sleep(delay)
            self.stats.backoff_sec += delay

    def _request(
        self, msg: P.Msg, body: bytes = b"", *, shrink: Callable[[], bytes | None] | None = None
    ) -> bytes:
        """Send (msg, body) with the next seq until its reply arrives; `shrink` may give a smaller body
        (a prefix of the same request) for each resend."""
        hello = self._require_open()
        self._seq = (self._seq + 1) & 0xFFFF
        seq = self._seq
        payload = P.packet(msg, seq, body)
        if len(payload) > hello.max_request:
            raise DeviceError(f"{msg.name} request of {len(payload)} bytes exceeds the device's "
                              f"{hello.max_request}-byte limit")
        frame = encode_frame(payload)
        self.stats.requests += 1
        started = time.monotonic()
        attempts = 0
        acked_at: float | None = None  # when the device acknowledged a long command
        poll = self.reply_timeout_sec
        send = True
        damage_seen = 0
        while True:
            if send:
                if acked_at is None:
                    attempts += 1
                    if attempts > self.max_attempts:
                        raise self._timeout(msg, seq, started)
                    if attempts > 1:
                        self._back_off(attempts)
                        # Smaller only when a frame was damaged (NACK, bad CRC): silence says nothing
                        # about size, and more frames would mean more chances to lose one.
                        damaged = self.stats.corrupt_frames + self.stats.nacks > damage_seen
                        smaller = shrink() if shrink is not None and damaged else None
                        if smaller is not None:
                            frame = encode_frame(P.packet(msg, seq, smaller))
                    damage_seen = self.stats.corrupt_frames + self.stats.nacks
                self._send(frame, retransmission=attempts > 1 or acked_at is not None)
            now = time.monotonic()
            if acked_at is None:
                deadline = now + self.reply_timeout_sec
            else:
                # Executing: a lost reply must not cost a whole run timeout, so ask again now and then
                # (the device answers a repeat from its cache once done), backing off up to 5 s.
                if now >= acked_at + self.run_timeout_sec:
                    raise DeviceTimeoutError(
                        f"the device acknowledged {msg.name} (seq {seq}) but sent no result within "
                        f"{self.run_timeout_sec:.1f} s",
                        "the model may hang or need longer: raise the run timeout, or look at the device",
                    )
                deadline = min(acked_at + self.run_timeout_sec, now + poll)
                poll = min(poll * 2, max(5.0, poll))
            outcome = self._await(msg, seq, deadline)
            if isinstance(outcome, bytes):
                if acked_at is not None:  # per model run, so TIME_RUNS of any count can scale it
                    self._busy_estimate_sec = (time.monotonic() - acked_at) / _model_runs(msg, body)
                return outcome
            if outcome is _ACKED:
                if acked_at is None:
                    acked_at = time.monotonic()
                    poll = self.reply_timeout_sec + 2 * self._busy_estimate_sec * _model_runs(msg, body)
                send = False
            else:
                send = True

    def _timeout(self, msg: P.Msg, seq: int, started: float) -> DeviceTimeoutError:
        return DeviceTimeoutError(
            f"the device did not answer {msg.name} (seq {seq}) after {self.max_attempts} attempts over "
            f"{time.monotonic() - started:.1f} s ({self.stats.corrupt_frames} corrupt frames, "
            f"{self.stats.nacks} NACKs and {self.stats.timeouts} timeouts so far)",
            f"check that the device is still running and that the link ({self.transport_name}) is sound",
        )

    def _send(self, frame: bytes, *, retransmission: bool) -> None:
        if retransmission:
            self.stats.retransmissions += 1
        try:
            self.transport.write(frame, self.reply_timeout_sec)
        except TransportClosedError as err:
            raise self._closed_error(err) from err
        except IoTimeoutError:
            # The device is not draining its input; count it as a lost attempt and let the retry loop decide.
            self.stats.timeouts += 1
            return
        self.stats.bytes_sent += len(frame)

    def _closed_error(self, err: BaseException) -> DeviceTransportClosedError:
        # A transport that knows why it closed (a server that read the firmware's fault report) says so
        # in its own message and hint; keep them rather than bury its hint in our message.
        message = getattr(err, "message", None)
        hint = getattr(err, "hint", None)
        return DeviceTransportClosedError(
            f"{self.transport_name} closed: {message if isinstance(message, str) else err}",
            hint if isinstance(hint, str) and hint else
            "the device (or its host process) went away; look at its output, then flash and run again",
        )

    def _next_frame(self, deadline: float) -> DecodedFrame | None:
        """The next decoded frame or framing error, or None once `deadline` passes."""
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                data = self.transport.read(4096, left)
            except IoTimeoutError:
                return None
            except TransportClosedError as err:
                raise self._closed_error(err) from err
            self.stats.bytes_received += len(data)
            self._pending.extend(self._decoder.feed(data))
        return self._pending.popleft()

    def _await(
        self, msg: P.Msg, seq: int, deadline: float, *, hello_nonce: int | None = None
    ) -> bytes | object | None:
        """Wait for the reply to (msg, seq): its body (status OK), _ACKED, None to resend; or raises."""
        expected_type = msg | P.REPLY_FLAG
        while True:
            frame = self._next_frame(deadline)
            if frame is None:
                self.stats.timeouts += 1
                return None
            if frame.event is not FrameEvent.OK:
                # Possibly our reply, damaged: ask again now rather than wait for the timeout.
                self.stats.corrupt_frames += 1
                return None
            pkt = frame.payload
            if len(pkt) < P.HEADER.size:
                self.stats.stale_packets += 1
                continue
            ptype, pseq = P.HEADER.unpack_from(pkt)
            if ptype == P.Msg.LOG:
                self._handle_log(pkt)
            elif ptype == P.Msg.NACK:
                self.stats.nacks += 1
                return None
            elif ptype == P.Msg.BOOT:
                self._handle_boot(pkt)
            elif ptype == P.Msg.ACK and pseq == seq and msg in _LONG_COMMANDS:
                return _ACKED
            elif ptype == expected_type and pseq == seq:
                if len(pkt) < P.REPLY_HEADER.size:
                    raise DeviceProtocolError(f"{msg.name} reply of {len(pkt)} bytes has no status byte")
                status = pkt[3]
                if status == P.Status.OK:
                    if hello_nonce is not None and not self._is_our_hello(pkt[4:], hello_nonce):
                        self.stats.stale_packets += 1
                        continue
                    return pkt[4:]
                detail = struct.unpack_from("<I", pkt, 4)[0] if len(pkt) >= 8 else 0
                if msg == P.Msg.RESET and status == P.Status.NO_SESSION:
                    return b""  # our RESET went through; only its reply was lost
                self._raise_status(msg, seq, status, detail)
            else:
                self.stats.stale_packets += 1

    @staticmethod
    def _is_our_hello(body: bytes, nonce: int) -> bool:
        return len(body) >= 6 and struct.unpack_from("<I", body, 2)[0] == nonce

    def _handle_log(self, pkt: bytes) -> None:
        self.stats.log_messages += 1
        level = pkt[3] if len(pkt) > 3 else 1
        self.on_log(level, pkt[4:].decode("utf-8", "replace"))

    def _handle_boot(self, pkt: bytes) -> None:
        if len(pkt) < 9 or self.hello is None:
            self.stats.stale_packets += 1  # before the handshake a BOOT is just the device starting up
            return
        nonce = struct.unpack_from("<I", pkt, 5)[0]
        if nonce == self.hello.device_nonce:
            self.stats.stale_packets += 1  # a duplicate of the boot announcement this session began after
            return
        self.hello = None
        raise DeviceResetError(
            "the device restarted during the session (it announced a new boot)",
            "its inputs and state are lost; look for a crash, watchdog or power problem, then run again",
        )

    def _raise_status(self, msg: P.Msg, seq: int, status: int, detail: int) -> None:
        if status == P.Status.NO_SESSION:
            self.hello = None
            raise DeviceResetError(
                f"the device no longer knows this session (it answered {msg.name} with NO_SESSION): it "
                "restarted since the handshake",
                "its inputs and state are lost; look for a crash, watchdog or power problem, then run again",
            )
        if status == P.Status.BAD_SEQUENCE:
            raise DeviceProtocolError(
                f"the device rejected {msg.name} seq {seq} as out of sequence (it expected {detail + 1})",
                "another program may be talking to the device on the same port; close it and retry",
            )
        if status == P.Status.VERSION_MISMATCH:
            raise DeviceProtocolError(
                f"the firmware speaks device protocol v{detail >> 8}.{detail & 0xFF}, this tvmc speaks "
                f"v{P.PROTOCOL_MAJOR}.{P.PROTOCOL_MINOR}",
                "rebuild and flash the project with this tvmc (tvmc micro build/flash)",
            )
        try:
            name = P.Status(status).name
        except ValueError:
            name = f"status {status}"
        text = _STATUS_TEXT.get(status, "unknown failure")  # type: ignore[call-overload]
        hint = "the firmware and this tvmc may disagree about the model; rebuild and flash the project"
        if status == P.Status.MODEL_ERROR:
            detail_signed = detail - (1 << 32) if detail & 0x80000000 else detail
            text = f"{text} (code {detail_signed})"
            hint = "the generated code reported a failure; run with -v and check the device log"
        elif status == P.Status.NO_PROFILE:
            hint = "build the project with per-operator profiling (-DTVMGEN_PROFILE) to use --profile"
        raise DeviceCommandError(f"device refused {msg.name}: {name}: {text} (detail {detail})", hint,
                                 status=status, detail=detail)


def _model_runs(msg: P.Msg, body: bytes) -> int:
    """How many model runs a long command performs (TIME_RUNS: its count)."""
    if msg == P.Msg.TIME_RUNS and len(body) >= 4:
        return max(1, int(struct.unpack_from("<I", body)[0]))
    return 1


def check_signature(
    hello: P.HelloReply, expected_signature: str, expected_name: str, project_dir: str
) -> None:
    """Refuse to run when the device serves another model build than the project's MLF."""
    if hello.signature != expected_signature or hello.model_name != expected_name:
        raise DeviceError(
            f"this board runs model {hello.model_name!r} built with signature {hello.signature}, but the "
            f"project has {expected_name!r} with signature {expected_signature}",
            f"flash {project_dir} first (tvmc micro flash {project_dir})",
        )
