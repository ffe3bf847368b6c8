"""The Python framing against the doc's vectors, and properties the vectors cannot show."""

from __future__ import annotations

import random

import pytest
from device_vectors import load_vectors, parse_hex
from tvmc_micro.device.framing import FrameDecoder, FrameEvent, crc16, encode_frame


def test_doc_has_vectors_of_every_kind() -> None:
    counts = {kind: len(load_vectors(kind)) for kind in ("crc", "frame", "frame-decode", "session")}
    assert counts["crc"] >= 4 and counts["frame"] >= 4 and counts["frame-decode"] >= 4
    assert counts["session"] >= 3


@pytest.mark.parametrize("vector", load_vectors("crc"), ids=lambda v: v.name)
def test_crc_vectors(vector) -> None:  # type: ignore[no-untyped-def]
    ascii_text = vector.get("ascii")
    data = ascii_text.encode() if ascii_text is not None else parse_hex(vector.get("data") or "")[0]
    assert crc16(data) == int(vector.get("crc"), 16)
    # Continuing a CRC over a split buffer gives the same value.
    assert crc16(data[1:], crc16(data[:1])) == crc16(data)


@pytest.mark.parametrize("vector", load_vectors("frame"), ids=lambda v: v.name)
def test_frame_vectors(vector) -> None:  # type: ignore[no-untyped-def]
    payload = parse_hex(vector.get("payload") or "")[0]
    frame = parse_hex(vector.get("frame"))[0]
    assert encode_frame(payload) == frame
    decoded = list(FrameDecoder().feed(frame))
    assert [(d.event, d.payload) for d in decoded] == [(FrameEvent.OK, payload)]


@pytest.mark.parametrize("vector", load_vectors("frame-decode"), ids=lambda v: v.name)
def test_frame_decode_vectors(vector) -> None:  # type: ignore[no-untyped-def]
    decoder = FrameDecoder(max_payload=int(vector.get("capacity")))
    events = list(decoder.feed(parse_hex(vector.get("bytes"))[0]))
    assert [e.event.name for e in events] == vector.get("events").split()
    if vector.get("payload") is not None:
        last_ok = [e for e in events if e.event is FrameEvent.OK][-1]
        assert last_ok.payload == parse_hex(vector.get("payload"))[0]


def test_round_trip_random_payloads_byte_by_byte() -> None:
    rng = random.Random(5)
    decoder = FrameDecoder()
    for _ in range(200):
        payload = bytes(rng.choice((0x7E, 0x7D, rng.randrange(256))) for _ in range(rng.randrange(0, 300)))
        frame = encode_frame(payload)
        assert frame.count(0x7E) == 1  # the start marker never appears inside
        events = [e for b in frame for e in decoder.feed(bytes([b]))]
        assert events[-1].event is FrameEvent.OK and events[-1].payload == payload


def test_no_single_bit_flip_is_accepted() -> None:
    rng = random.Random(11)
    payload = bytes(rng.randrange(256) for _ in range(200))
    frame = encode_frame(payload)
    for index in range(1, len(frame)):
        for bit in range(8):
            damaged = bytearray(frame)
            damaged[index] ^= 1 << bit
            # Followed by a good frame, so a frame left incomplete still resolves (as TRUNCATED).
            events = list(FrameDecoder().feed(bytes(damaged) + encode_frame(b"next")))
            accepted = [e.payload for e in events if e.event is FrameEvent.OK]
            assert accepted == [b"next"], (index, bit)


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="65535"):
        encode_frame(bytes(70000))


def test_noise_outside_frames_is_counted() -> None:
    decoder = FrameDecoder()
    events = list(decoder.feed(b"boot garbage" + encode_frame(b"x")))
    assert [e.payload for e in events] == [b"x"]
    assert decoder.discarded == len(b"boot garbage")


def test_chunking_does_not_change_what_is_decoded() -> None:
    """Damaged, noisy streams decode to the same events however the bytes are split into reads."""
    rng = random.Random(23)
    stream = bytearray()
    for _ in range(150):
        frame = bytearray(encode_frame(bytes(rng.choice((0x7E, 0x7D, rng.randrange(256)))
                                             for _ in range(rng.randrange(0, 90)))))
        damage = rng.random()
        if damage < 0.15:
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
        elif damage < 0.25:
            del frame[rng.randrange(len(frame))]
        elif damage < 0.3:
            frame += bytes([0x7D, 0x41])
        stream += frame
        if rng.random() < 0.2:
            stream += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
    whole = [(e.event, e.payload) for e in FrameDecoder(64).feed(bytes(stream))]
    one = FrameDecoder(64)
    single = [(e.event, e.payload) for b in stream for e in one.feed(bytes([b]))]
    assert len({e for e, _ in whole}) >= 4  # the stream really exercises several outcomes
    for _ in range(5):
        decoder = FrameDecoder(64)
        pieces, pos = [], 0
        while pos < len(stream):
            step = rng.randrange(1, 40)
            pieces.extend(decoder.feed(bytes(stream[pos : pos + step])))
            pos += step
        assert [(e.event, e.payload) for e in pieces] == whole
    assert single == whole

