"""The zephyr template's board knowledge, kept out of the thin server: the board table (boards.yaml), the
closest-match suggestion for a mistyped board, the console baud rate read from the built devicetree, and
the choice of a USB serial port. Pure functions over data, so tests can check them one by one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microtvm_api.errors import ServerError

TEMPLATE_DIR = Path(__file__).resolve().parent
BOARDS_YAML = TEMPLATE_DIR / "boards.yaml"
TRANSPORTS = ("qemu", "native", "serial")


class BoardError(ServerError):
    """A board that is unknown, badly described in boards.yaml, or not reachable; the message says why."""

    default_message = "board problem"


@dataclass(frozen=True)
class UsbId:
    vid: int
    pid: int
    port_index: int = 0


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    transport: str
    toolchain: str
    ram_bytes: int | None
    kconfig: Mapping[str, str] = field(default_factory=dict)
    qemu_binary: str | None = None
    qemu_args: tuple[str, ...] = ()
    runner: str | None = None
    usb: UsbId | None = None


@dataclass(frozen=True)
class BoardTable:
    boards: Mapping[str, Board]
    # west flash runner -> its "select the probe by serial number" flag (None: the runner has none).
    serial_flags: Mapping[str, str | None]

    def get(self, name: str) -> Board:
        """The board called `name`, or a BoardError naming the closest known boards."""
        if name in self.boards:
            return self.boards[name]
        close = difflib.get_close_matches(name, list(self.boards), n=3, cutoff=0.5)
        suggestion = f"did you mean {', '.join(close)}? " if close else ""
        raise BoardError(
            f"unknown Zephyr board {name!r}",
            f"{suggestion}known boards: {', '.join(self.boards)} (add one to boards.yaml)",
            data={"board": name, "closest": close},
        )


def _need(entry: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in entry:
        raise BoardError(f"boards.yaml: {where} has no {key!r} field")
    value = entry[key]
    if not isinstance(value, kind):
        raise BoardError(f"boards.yaml: {where}: {key!r} is {value!r}, expected {kind}")
    return value


def _parse_usb(raw: Any, where: str) -> UsbId:
    if not isinstance(raw, Mapping):
        raise BoardError(f"boards.yaml: {where}: usb must be a mapping with vid and pid")
    try:
        return UsbId(int(str(raw["vid"]), 16), int(str(raw["pid"]), 16), int(raw.get("port_index", 0)))
    except (KeyError, ValueError) as err:
        raise BoardError(f"boards.yaml: {where}: usb needs hex vid and pid strings ({err})") from None


def parse_board(name: str, entry: Any) -> Board:
    """One boards.yaml entry as a Board; a missing or mistyped field is named in the error."""
    where = f"board {name!r}"
    if not isinstance(entry, Mapping):
        raise BoardError(f"boards.yaml: {where} must be a mapping of fields")
    transport = _need(entry, "transport", where, str)
    if transport not in TRANSPORTS:
        raise BoardError(f"boards.yaml: {where}: transport {transport!r} is not one of {TRANSPORTS}")
    kconfig = entry.get("kconfig") or {}
    if not isinstance(kconfig, Mapping) or not all(str(k).startswith("CONFIG_") for k in kconfig):
        raise BoardError(f"boards.yaml: {where}: kconfig must map CONFIG_* names to values")
    qemu_binary: str | None = None
    qemu_args: tuple[str, ...] = ()
    if transport == "qemu":
        qemu = _need(entry, "qemu", where, dict)
        qemu_binary = _need(qemu, "binary", f"{where} qemu", str)
        qemu_args = tuple(str(a) for a in _need(qemu, "args", f"{where} qemu", list))
    runner, usb = None, None
    if transport == "serial":
        runner = _need(entry, "runner", where, str)
        usb = _parse_usb(_need(entry, "usb", where, dict), where)
    ram = entry.get("ram_bytes")
    if ram is not None and not isinstance(ram, int):
        raise BoardError(f"boards.yaml: {where}: ram_bytes must be an integer or null")
    return Board(
        name=name,
        description=str(entry.get("description", "")),
        transport=transport,
        toolchain=_need(entry, "toolchain", where, str),
        ram_bytes=ram,
        kconfig={str(k): str(v) for k, v in kconfig.items()},
        qemu_binary=qemu_binary,
        qemu_args=qemu_args,
        runner=runner,
        usb=usb,
    )


def load_boards(path: Path = BOARDS_YAML) -> BoardTable:
    import yaml  # only when boards are needed: keeps server_info_query cheap

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BoardError(f"cannot read the board table {path}: {err}") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("boards"), Mapping):
        raise BoardError(f"{path}: expected a mapping with a 'boards' table")
    runners = raw.get("runners") or {}
    if not isinstance(runners, Mapping):
        raise BoardError(f"{path}: 'runners' must map runner names to their serial-number flag")
    table = BoardTable({n: parse_board(n, e) for n, e in raw["boards"].items()}, dict(runners))
    for board in table.boards.values():
        if board.runner is not None and board.runner not in table.serial_flags:
            raise BoardError(f"{path}: board {board.name!r} uses runner {board.runner!r}, not in 'runners'")
    return table


# ---- the console baud rate from the devicetree Zephyr wrote at build time (build/zephyr/zephyr.dts) ----

_CHOSEN_CONSOLE = re.compile(r"zephyr,console\s*=\s*&([A-Za-z_][\w]*)\s*;")
_SPEED = re.compile(r"current-speed\s*=\s*<\s*(0x[0-9a-fA-F]+|\d+)\s*>\s*;")


def console_baud(dts_text: str) -> int:
    """Baud rate of the `zephyr,console` UART: its node's `current-speed` in the final devicetree."""
    chosen = _CHOSEN_CONSOLE.search(dts_text)
    if chosen is None:
        raise BoardError(
            "the built devicetree has no zephyr,console chosen node",
            "the firmware talks on the console UART: give the board a console (a devicetree overlay)",
        )
    label = chosen.group(1)
    start = re.search(rf"^\s*(?:[\w]+:\s*)*{re.escape(label)}:\s*[^\n{{]*\{{", dts_text, re.M)
    if start is None:
        raise BoardError(f"the built devicetree has no node labelled {label!r} (the console UART)")
    depth, pos = 1, start.end()
    while depth and pos < len(dts_text):  # the node's own body, not its children's or later nodes'
        ch = dts_text[pos]
        depth += ch == "{"
        depth -= ch == "}"
        pos += 1
    body = dts_text[start.end() : pos]
    body_top = re.sub(r"\{[^{}]*\}", "", body)  # drop child nodes (one level is all UART nodes have)
    speed = _SPEED.search(body_top)
    if speed is None or int(speed.group(1), 0) == 0:
        raise BoardError(
            f"the console UART {label!r} has no current-speed in the built devicetree",
            "set current-speed on that node in a devicetree overlay, or pass --project-option baud_rate=N",
        )
    return int(speed.group(1), 0)


# ---- which USB serial port is the board ----


@dataclass(frozen=True)
class PortInfo:
    """The fields of pyserial's ListPortInfo this template uses (a real object stands in for it in tests)."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None


def choose_port(ports: Sequence[PortInfo], board: Board, serial_number: str | None) -> str:
    """The console port: by probe serial number when given, else by the board's USB VID:PID."""
    if board.usb is None:
        raise BoardError(f"board {board.name!r} has no usb entry in boards.yaml to find its serial port")
    if serial_number:
        matching = [p for p in ports if p.serial_number == serial_number]
        what = f"serial number {serial_number}"
    else:
        matching = [p for p in ports if (p.vid, p.pid) == (board.usb.vid, board.usb.pid)]
        what = f"USB id {board.usb.vid:04x}:{board.usb.pid:04x}"
    matching.sort(key=lambda p: p.device)
    if not matching:
        seen = ", ".join(
            f"{p.device} ({p.vid or 0:04x}:{p.pid or 0:04x} sn={p.serial_number})" for p in ports
        ) or "none"
        raise BoardError(
            f"no serial port with {what} for board {board.name!r}",
            f"check the board is plugged in and powered; ports seen: {seen}",
        )
    serials = {p.serial_number for p in matching}
    if not serial_number and len(serials) > 1:
        raise BoardError(
            f"{len(serials)} boards with {what} are connected: {', '.join(sorted(map(str, serials)))}",
            "pick one with --project-option serial_number=<one of them>",
        )
    if board.usb.port_index >= len(matching):
        raise BoardError(
            f"board {board.name!r} should expose port #{board.usb.port_index}, found only "
            f"{', '.join(p.device for p in matching)}"
        )
    return matching[board.usb.port_index].device
