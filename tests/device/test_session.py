"""DeviceSession against the real crt_host firmware: every command, chunking, and every error path."""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import pytest
from tvmc_micro.device import (
    DeviceCommandError,
    DeviceError,
    DeviceProtocolError,
    DeviceResetError,
    DeviceSession,
    DeviceTimeoutError,
    DeviceTransportClosedError,
    check_signature,
)
from tvmc_micro.device import protocol as P
from tvmc_micro.device.process import ProcessTransport
from tvmc_micro.device.reference_model import FAIL_CODE, SIGNATURE, expected_output


def test_info_describes_the_model(device4: ProcessTransport) -> None:
    logs: list[tuple[int, str]] = []
    session = DeviceSession(device4, on_log=lambda level, text: logs.append((level, text)))
    hello = session.open()
    assert (hello.model_name, hello.signature) == ("tiny", SIGNATURE)
    info = session.info()
    assert info.protocol_version == (1, 0)
    assert info.timer_hz == 1_000_000_000
    assert [(t.name, t.dtype, t.shape, t.size_bytes) for t in info.inputs] == [("x", "int8", (1, 4), 4)]
    assert [(t.name, t.dtype, t.shape, t.size_bytes) for t in info.outputs] == [("y", "int8", (1, 4), 4)]
    assert info.op_names == ("double", "add_one")
    # The firmware's startup message came over the log channel.
    assert (1, "crt_host firmware up: serving over stdin/stdout") in logs
    assert session.stats.log_messages >= 1


def test_inference_with_chunked_transfers(device_big: ProcessTransport) -> None:
    session = DeviceSession(device_big)
    hello = session.open()
    assert hello.max_request == 128 and hello.max_reply == 128
    rng = random.Random(3)
    for _ in range(3):
        x = bytes(rng.randrange(256) for _ in range(1000))
        session.set_input(0, x)
        ticks = session.run()
        assert ticks > 0
        assert session.get_output(0) == expected_output(x)
    # 1000 bytes over 120-byte SET_INPUT chunks and 124-byte GET_OUTPUT chunks: 9 + 9 requests each time.
    assert session.stats.requests >= 3 * (9 + 1 + 9)
    assert session.stats.retransmissions == 0


def test_time_runs_and_profile(device4: ProcessTransport) -> None:
    session = DeviceSession(device4)
    session.open()
    session.set_input(0, b"\x01\x02\x03\x04")
    timing = session.time_runs(20)
    assert timing.count == 20
    assert 0 < timing.min_ticks <= timing.total_ticks / 20 <= timing.max_ticks
    assert timing.mean_sec < 0.01
    profile = session.profile_ops()
    assert profile.op_names == ("double", "add_one")
    assert len(profile.op_ticks) == 2 and all(t > 0 for t in profile.op_ticks)
    assert profile.total_ticks >= sum(profile.op_ticks)
    # Profiling ran the model: the output is there.
    assert session.get_output(0) == expected_output(b"\x01\x02\x03\x04")


def test_profile_chunks_op_times(device_big: ProcessTransport) -> None:
    session = DeviceSession(device_big, host_max_payload=64)
    hello = session.open()
    assert hello.max_reply == 64
    profile = session.profile_ops()
    assert len(profile.seconds) == 2


def test_reset_clears_state_and_reopens(device4: ProcessTransport) -> None:
    session = DeviceSession(device4)
    first = session.open()
    session.set_input(0, b"\x05\x05\x05\x05")
    session.run()
    again = session.reset()
    assert again.host_nonce != first.host_nonce
    assert again.device_nonce == first.device_nonce  # same boot
    assert session.get_output(0) == b"\x00" * 4


def test_model_error_is_reported_with_its_code(device4: ProcessTransport) -> None:
    session = DeviceSession(device4)
    session.open()
    session.set_input(0, b"\x80\x80\x00\x00")
    with pytest.raises(DeviceCommandError, match=f"code {FAIL_CODE}") as info:
        session.run()
    assert info.value.status == P.Status.MODEL_ERROR
    assert "device log" in (info.value.hint or "")


def test_wrong_input_size_and_indexes(device4: ProcessTransport) -> None:
    session = DeviceSession(device4)
    session.open()
    with pytest.raises(DeviceError, match=r"input 'x' needs 4 bytes \(int8\[1, 4\]\), got 3"):
        session.set_input(0, b"abc")
    with pytest.raises(DeviceError, match="input index 1 out of range"):
        session.set_input(1, b"abcd")
    with pytest.raises(DeviceError, match="output index 2 out of range"):
        session.get_output(2)


def test_profile_without_hooks(tiny_noprofile_firmware: Path) -> None:
    transport = ProcessTransport([str(tiny_noprofile_firmware)])
    with DeviceSession(transport) as session:
        with pytest.raises(DeviceCommandError, match="NO_PROFILE") as info:
            session.profile_ops()
        assert "TVMGEN_PROFILE" in (info.value.hint or "")
        session.run()  # the model itself still works


def test_device_that_never_answers() -> None:
    # A real process that reads everything and never writes: a board running some other firmware.
    transport = ProcessTransport([sys.executable, "-c", "import sys; sys.stdin.buffer.read()"])
    session = DeviceSession(
        transport, reply_timeout_sec=0.1, open_timeout_sec=0.5, transport_name="test pipe"
    )
    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="no handshake from the device on test pipe") as info:
        session.open()
    assert time.monotonic() - started < 3
    assert "flashed" in (info.value.hint or "") and "baud rate" in (info.value.hint or "")
    assert session.stats.retransmissions >= 3
    transport.close()


def test_device_that_exits() -> None:
    transport = ProcessTransport([sys.executable, "-c", "pass"])
    session = DeviceSession(transport, reply_timeout_sec=0.5)
    with pytest.raises(DeviceTransportClosedError, match="closed"):
        session.open()
    transport.close()


def test_request_timeout_names_the_command(tiny4_firmware: Path) -> None:
    transport = ProcessTransport([str(tiny4_firmware)])
    session = DeviceSession(transport, reply_timeout_sec=0.1, max_attempts=3)
    session.open()
    os.kill(transport.proc.pid, 19)  # SIGSTOP: the device hangs (but its pipes stay open)
    try:
        with pytest.raises(DeviceTimeoutError, match=r"did not answer INFO \(seq \d+\) after 3 attempts"):
            session.info()
    finally:
        os.kill(transport.proc.pid, 18)  # SIGCONT
        transport.close()


def test_device_restart_is_detected(tiny4_firmware: Path) -> None:
    """A reboot between requests: the new firmware announces another nonce / has no session."""
    from tvmc_micro.device.session import Transport

    class Rebooting:
        """Real pipes to a real firmware process, which it can power-cycle."""

        def __init__(self) -> None:
            self.inner = ProcessTransport([str(tiny4_firmware)])

        def reboot(self) -> None:
            self.inner.kill()
            self.inner = ProcessTransport([str(tiny4_firmware)])

        def write(self, data: bytes, timeout_sec: float | None) -> None:
            self.inner.write(data, timeout_sec)

        def read(self, n: int, timeout_sec: float | None) -> bytes:
            return self.inner.read(n, timeout_sec)

        def close(self) -> None:
            self.inner.close()

    link = Rebooting()
    transport: Transport = link
    session = DeviceSession(transport)
    session.open()
    session.set_input(0, b"\x01\x01\x01\x01")
    link.reboot()
    with pytest.raises(DeviceResetError, match="restarted") as info:
        session.run()
    assert "inputs" in (info.value.hint or "")
    with pytest.raises(DeviceError, match="not open"):
        session.run()  # the session is over until reopened
    session.open()
    session.set_input(0, b"\x01\x01\x01\x01")
    session.run()
    assert session.get_output(0) == b"\x03\x03\x03\x03"
    session.close()


def test_version_mismatch(device4: ProcessTransport, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(P, "PROTOCOL_MAJOR", 2)
    session = DeviceSession(device4)
    message = r"firmware speaks device protocol v1\.0, this tvmc speaks v2\.0"
    with pytest.raises(DeviceProtocolError, match=message):
        session.open()


def test_out_of_sequence_is_a_protocol_error(device4: ProcessTransport) -> None:
    session = DeviceSession(device4)
    session.open()
    session._seq += 7  # as if another program had been talking to the device in between
    with pytest.raises(DeviceProtocolError, match="out of sequence") as info:
        session.info()
    assert "another program" in (info.value.hint or "")


def test_commands_need_an_open_session(device4: ProcessTransport) -> None:
    with pytest.raises(DeviceError, match="not open"):
        DeviceSession(device4).run()


def test_signature_check() -> None:
    hello = P.HelloReply(1, 0, 1, 2, 128, 128, "kws", "aaaaaaaaaaaaaaaa")
    check_signature(hello, "aaaaaaaaaaaaaaaa", "kws", "proj")
    with pytest.raises(DeviceError, match="this board runs model 'kws' built with signature aaaa") as info:
        check_signature(hello, "bbbbbbbbbbbbbbbb", "kws", "proj")
    assert info.value.hint == "flash proj first (tvmc micro flash proj)"


def test_malformed_replies_are_rejected() -> None:
    with pytest.raises(P.MalformedReply, match="trailing"):
        P.parse_run(bytes(9))
    with pytest.raises(P.MalformedReply, match="ends after"):
        P.parse_info(bytes(3))
    with pytest.raises(P.MalformedReply, match="runs past"):
        P.parse_op_info(b"\x05ab")
    with pytest.raises(P.MalformedReply, match="asked for 2"):
        P.parse_op_times(b"\x01\x00" + bytes(8), 2)


def test_lost_reply_after_ack_costs_a_poll_not_the_run_timeout(tiny4_firmware: Path) -> None:
    """RUN is acknowledged, then its reply is lost: the host asks again and gets the cached reply."""
    from tvmc_micro.device.framing import FrameDecoder, FrameEvent, encode_frame

    class DropFirstRunReply:
        """Real pipes to the firmware; re-frames what it sends and swallows the first RUN reply."""

        def __init__(self) -> None:
            self.inner = ProcessTransport([str(tiny4_firmware)])
            self.decoder = FrameDecoder()
            self.dropped = 0
            self.pending = b""

        def write(self, data: bytes, timeout_sec: float | None) -> None:
            self.inner.write(data, timeout_sec)

        def read(self, n: int, timeout_sec: float | None) -> bytes:
            deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
            while not self.pending:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                for frame in self.decoder.feed(self.inner.read(4096, left)):
                    assert frame.event is FrameEvent.OK
                    if frame.payload[0] == P.Msg.RUN | P.REPLY_FLAG and not self.dropped:
                        self.dropped += 1
                        continue
                    self.pending += encode_frame(frame.payload)
            out, self.pending = self.pending[:n], self.pending[n:]
            return out

        def close(self) -> None:
            self.inner.close()

    link = DropFirstRunReply()
    session = DeviceSession(link, reply_timeout_sec=0.2, run_timeout_sec=30.0)
    session.open()
    session.set_input(0, b"\x02\x02\x02\x02")
    started = time.monotonic()
    assert session.run() > 0
    assert time.monotonic() - started < 2.0
    assert link.dropped == 1 and session.stats.retransmissions == 1
    assert session.get_output(0) == b"\x05\x05\x05\x05"
    session.close()


def test_run_that_never_finishes_hits_the_run_timeout(tmp_path: Path) -> None:
    from tvmc_micro.device.reference_model import build_host_firmware, write_tiny_mlf

    # A model that spins for ~4e9 iterations: acknowledged at once, then effectively hung.
    firmware = build_host_firmware(write_tiny_mlf(tmp_path / "mlf", spin=4_000_000_000), tmp_path / "fw")
    transport = ProcessTransport([str(firmware)])
    session = DeviceSession(transport, reply_timeout_sec=0.1, run_timeout_sec=0.6)
    session.open()
    started = time.monotonic()
    message = r"acknowledged RUN \(seq \d+\) but sent no result within 0\.6 s"
    try:
        with pytest.raises(DeviceTimeoutError, match=message) as info:
            session.run()
        assert 0.5 < time.monotonic() - started < 3.0
        assert "raise the run timeout" in (info.value.hint or "")
        assert session.stats.retransmissions >= 1  # it polled while waiting
    finally:
        transport.kill()


def test_firmware_exits_cleanly_on_eof_and_writes_only_frames(tiny4_firmware: Path) -> None:
    transport = ProcessTransport([str(tiny4_firmware)])
    session = DeviceSession(transport)
    session.open()
    session.set_input(0, b"\x00\x00\x00\x00")
    session.run()
    assert session._decoder.discarded == 0  # nothing but frames on the firmware's stdout
    assert transport.close() == 0  # end of file on stdin: a clean exit
    assert "transport write failed" not in transport.stderr_tail()
