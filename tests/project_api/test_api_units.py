"""The pure layers: line framing, option declarations/conversion, and the error ↔ JSON-RPC mapping."""

from __future__ import annotations

import os

import pytest
from microtvm_api import errors, framing
from microtvm_api.errors import InvalidOptionError
from microtvm_api.framing import LineReader, LineTooLongError
from microtvm_api.options import ProjectOption, convert, parse_key_values, resolve
from microtvm_api.protocol import protocol_major

OPTIONS = (
    ProjectOption("board", "str", None, "board", choices=("a", "b"), required=("build",)),
    ProjectOption("verbose", "bool", False, "log", optional=("build", "flash")),
    ProjectOption("jobs", "int", 2, "parallel jobs", optional=("build",)),
    ProjectOption("scale", "float", None, "a float", optional=("flash",)),
    ProjectOption("everywhere", "str", "x", "no methods listed: applies to all"),
)


def test_encode_is_one_ascii_line() -> None:
    line = framing.encode({"text": "µs → ok", "n": 1})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert line.isascii()
    assert framing.decode(line) == {"text": "µs → ok", "n": 1}


def test_line_reader_splits_keeps_partial_and_handles_eof() -> None:
    r, w = os.pipe()
    os.write(w, b'{"a": 1}\r\n{"b"')
    reader = LineReader(r)
    assert reader.read_line(1.0) == b'{"a": 1}'
    with pytest.raises(errors.IoTimeoutError):
        reader.read_line(0.05)
    os.write(w, b": 2}\n")
    assert reader.read_line(1.0) == b'{"b": 2}'
    os.write(w, b"last-without-newline")
    os.close(w)
    assert reader.read_line(1.0) == b"last-without-newline"
    assert reader.read_line(1.0) is None
    os.close(r)


def test_line_reader_skips_an_over_long_line_and_recovers() -> None:
    r, w = os.pipe()
    os.write(w, b"x" * 300 + b"\nok\n")
    os.close(w)
    reader = LineReader(r, max_line_bytes=100)
    with pytest.raises(LineTooLongError):
        reader.read_line(1.0)
    assert reader.read_line(1.0) == b"ok"
    os.close(r)


def test_key_value_split_at_first_equals() -> None:
    assert parse_key_values(["cflags=-DX=1 -O2", "board=a", "board=b"]) == {
        "cflags": "-DX=1 -O2",
        "board": "b",
    }
    with pytest.raises(InvalidOptionError, match="not key=value"):
        parse_key_values(["novalue"])
    with pytest.raises(InvalidOptionError):
        parse_key_values(["=x"])


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("verbose", "false", False),
        ("verbose", "TRUE", True),
        ("verbose", False, False),
        ("jobs", "0x10", 16),
        ("jobs", 3, 3),
        ("scale", "2.5", 2.5),
        ("scale", 2, 2.0),
        ("board", "a", "a"),
    ],
)
def test_convert_to_declared_type(name: str, raw: object, value: object) -> None:
    option = {o.name: o for o in OPTIONS}[name]
    assert convert(option, raw) == value
    assert type(convert(option, raw)) is type(value)


@pytest.mark.parametrize(
    ("name", "raw"),
    [("verbose", "maybe"), ("jobs", "two"), ("jobs", True), ("scale", "x"), ("board", 3), ("jobs", 2.5)],
)
def test_convert_refuses_wrong_types_naming_the_option(name: str, raw: object) -> None:
    option = {o.name: o for o in OPTIONS}[name]
    with pytest.raises(InvalidOptionError, match=name) as info:
        convert(option, raw)
    assert info.value.hint and name in info.value.hint


def test_resolve_filters_per_method_and_fills_defaults() -> None:
    assert resolve(OPTIONS, "build", {"board": "a", "scale": "1.5"}) == {
        "board": "a",
        "verbose": False,
        "jobs": 2,
        "everywhere": "x",
    }
    assert resolve(OPTIONS, "flash", {"board": "b", "scale": "1.5"}) == {
        "verbose": False,
        "scale": 1.5,
        "everywhere": "x",
    }
    # Saved values (a generated project) sit between the call's values and the defaults.
    assert resolve(OPTIONS, "build", {"jobs": "4"}, saved={"board": "b", "jobs": 8})["jobs"] == 4
    assert resolve(OPTIONS, "build", {}, saved={"board": "b"})["board"] == "b"


def test_resolve_errors_name_the_problem() -> None:
    with pytest.raises(InvalidOptionError, match="required by build") as info:
        resolve(OPTIONS, "build", {})
    assert "one of: a, b" in info.value.message
    with pytest.raises(InvalidOptionError, match="unknown project option 'bord'") as info:
        resolve(OPTIONS, "build", {"bord": "a"})
    assert "board (str)" in (info.value.hint or "") and "verbose (bool)" in (info.value.hint or "")
    with pytest.raises(InvalidOptionError, match="not one of: a, b"):
        resolve(OPTIONS, "build", {"board": "c"})
    # A mistyped option is refused even by a method it does not apply to: typos never pass silently.
    with pytest.raises(InvalidOptionError, match="scale"):
        resolve(OPTIONS, "build", {"board": "a", "scale": "fast"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "my-opt", "type": "str"}, "not an identifier"),
        ({"name": "x", "type": "enum"}, "type 'enum'"),
        ({"name": "x", "type": "str", "required": ("deploy",)}, "'deploy' is not a method"),
        ({"name": "x", "type": "int", "default": "many"}, "must be an integer"),
        ({"name": "x", "type": "str", "default": "c", "choices": ("a", "b")}, "not one of its choices"),
    ],
)
def test_bad_declarations_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProjectOption(**kwargs)  # type: ignore[arg-type]


def test_declaration_json_round_trip_and_v018_form() -> None:
    for option in OPTIONS:
        assert ProjectOption.from_json(option.to_json()) == option
    old = {
        "name": "zephyr_base",
        "choices": None,
        "default": None,
        "required": None,
        "optional": ["build", "open_transport"],
        "help": "Path to the zephyr base directory.",
    }
    assert ProjectOption.from_json(old).type == "str"
    with pytest.raises(ValueError, match="unknown keys"):
        ProjectOption.from_json({"name": "x", "type": "str", "colour": "red"})


def test_error_round_trip_keeps_class_hint_and_traceback() -> None:
    try:
        raise errors.IoTimeoutError("no reply in 1 s", "check the cable", data={"port": "/dev/ttyACM0"})
    except errors.IoTimeoutError as err:
        wire = errors.to_wire(err)
    assert wire["code"] == -32000 and wire["data"]["type"] == "IoTimeoutError"
    rebuilt = errors.from_wire(wire)
    assert type(rebuilt) is errors.IoTimeoutError
    assert (rebuilt.message, rebuilt.hint, rebuilt.data) == (
        "no reply in 1 s",
        "check the cable",
        {"port": "/dev/ttyACM0"},
    )
    assert rebuilt.remote_traceback and "raise errors.IoTimeoutError" in rebuilt.remote_traceback


def test_unknown_remote_types_fall_back_to_the_base_class_of_their_code() -> None:
    rebuilt = errors.from_wire({"code": -32000, "message": "disk full", "data": {"type": "VendorFlashError"}})
    assert type(rebuilt) is errors.ServerError
    assert rebuilt.remote_type == "VendorFlashError" and "VendorFlashError" in str(rebuilt)
    params = errors.from_wire({"code": -32602, "message": "Invalid params", "data": "missing 'n'"})
    assert type(params) is errors.InvalidParamsError and "missing 'n'" in params.message
    # A type name of another code's family does not win over the code.
    odd = errors.from_wire({"code": -32601, "message": "m", "data": {"type": "IoTimeoutError"}})
    assert type(odd) is errors.MethodNotFoundError
    assert isinstance(errors.from_wire("junk"), errors.ServerProtocolError)


def test_v018_error_form_class_name_in_message() -> None:
    wire = {
        "code": -32000,
        "message": "TransportClosedError",
        "data": {"traceback": "Traceback...\nTransportClosedError: serial port vanished\n"},
    }
    rebuilt = errors.from_wire(wire)
    assert type(rebuilt) is errors.TransportClosedError
    assert rebuilt.message == "TransportClosedError: serial port vanished"


def test_foreign_exceptions_keep_their_type_name() -> None:
    try:
        {}["missing"]
    except KeyError as err:
        wire = errors.to_wire(err)
    assert wire["data"]["type"] == "KeyError" and "missing" in wire["message"]


def test_protocol_major_parsing() -> None:
    assert [protocol_major(v) for v in (1, "1.3", "2", True, "x", None)] == [1, 1, 2, None, None, None]
