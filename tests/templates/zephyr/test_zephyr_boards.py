"""The board table (boards.yaml) and the pure helpers around it: closest-match errors, the console baud
rate from a built devicetree, and the choice of a USB serial port."""

from __future__ import annotations

from pathlib import Path

import pytest
from zephyr_boards import BoardError, PortInfo, choose_port, console_baud, load_boards, parse_board

REQUIRED = {
    "qemu_cortex_m3": "qemu",
    "qemu_x86": "qemu",
    "native_sim": "native",
    "native_sim/native/64": "native",
    "nucleo_l4r5zi": "serial",
    "nucleo_f746zg": "serial",
    "nrf5340dk/nrf5340/cpuapp": "serial",
    "mimxrt1050_evk": "serial",
}


def test_table_has_the_required_boards_with_their_transport() -> None:
    table = load_boards()
    for name, transport in REQUIRED.items():
        assert table.get(name).transport == transport, name
    for board in table.boards.values():
        if board.transport == "serial":
            assert board.usb is not None and board.runner in table.serial_flags
        if board.transport == "qemu":
            assert board.qemu_binary and board.qemu_args
    assert table.get("nucleo_l4r5zi").usb.vid == 0x0483  # type: ignore[union-attr]
    assert table.serial_flags["openocd"] == "--serial"
    assert table.serial_flags["jlink"] == "--dev-id"


def test_unknown_board_names_the_closest_matches() -> None:
    with pytest.raises(BoardError) as err:
        load_boards().get("qemu_cortex_m33")
    assert "unknown Zephyr board 'qemu_cortex_m33'" in err.value.message
    assert "did you mean qemu_cortex_m3" in (err.value.hint or "")
    assert err.value.data["closest"][0] == "qemu_cortex_m3"


def test_nothing_close_still_lists_the_known_boards() -> None:
    with pytest.raises(BoardError) as err:
        load_boards().get("esp32")
    assert "did you mean" not in (err.value.hint or "")
    assert "native_sim" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"toolchain": "host"}, "has no 'transport'"),
        ({"transport": "usb", "toolchain": "host"}, "transport 'usb' is not one of"),
        ({"transport": "qemu", "toolchain": "x"}, "has no 'qemu'"),
        (
            {"transport": "serial", "toolchain": "x", "runner": "jlink", "usb": {"vid": "zz", "pid": "1"}},
            "hex vid and pid",
        ),
        ({"transport": "native", "toolchain": "host", "kconfig": {"FPU": "y"}}, r"CONFIG_\* names"),
        ({"transport": "native", "toolchain": "host", "ram_bytes": "big"}, "ram_bytes must be an integer"),
        ("not a mapping", "must be a mapping"),
    ],
)
def test_malformed_board_entries_are_named(entry: object, problem: str) -> None:
    with pytest.raises(BoardError, match=problem):
        parse_board("b", entry)


def test_runner_missing_from_runner_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "boards.yaml"
    path.write_text(
        "boards:\n  b:\n    transport: serial\n    toolchain: gnuarmemb\n    runner: stlink\n"
        "    usb: {vid: '0483', pid: '374b'}\nrunners: {jlink: --dev-id}\n"
    )
    with pytest.raises(BoardError, match="runner 'stlink', not in 'runners'"):
        load_boards(path)


def test_unreadable_or_shapeless_table(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="cannot read the board table"):
        load_boards(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(BoardError, match="expected a mapping with a 'boards' table"):
        load_boards(tmp_path / "bad.yaml")


# Shaped like Zephyr's build/zephyr/zephyr.dts (comments, labels, nested nodes, hex cells).
DTS = """/dts-v1/;
/ {
\tchosen {
\t\tzephyr,sram = &sram0;
\t\tzephyr,console = &usart3;          /* in boards/st/nucleo_f746zg/nucleo_f746zg.dts:22 */
\t};
\tsoc {
\t\tusart2: serial@40004400 {
\t\t\tcurrent-speed = < 0x2580 >;
\t\t};
\t\tusart3: arduino_serial: serial@40004800 {
\t\t\tcompatible = "st,stm32-usart", "st,stm32-uart";
\t\t\tdma { current-speed = < 0x1 >; };
\t\t\tcurrent-speed = < 0x1c200 >;   /* in boards/st/nucleo_f746zg/nucleo_f746zg.dts:70 */
\t\t};
\t};
};
"""


def test_console_baud_follows_the_chosen_console() -> None:
    assert console_baud(DTS) == 115200
    assert console_baud(DTS.replace("&usart3", "&usart2")) == 9600


@pytest.mark.parametrize(
    ("dts", "problem"),
    [
        (DTS.replace("zephyr,console = &usart3;", ""), "no zephyr,console chosen node"),
        (DTS.replace("&usart3", "&uart9"), "no node labelled 'uart9'"),
        (DTS.replace("current-speed = < 0x1c200 >;", ""), "has no current-speed"),
        (DTS.replace("0x1c200", "0x0"), "has no current-speed"),
    ],
)
def test_console_baud_errors(dts: str, problem: str) -> None:
    with pytest.raises(BoardError, match=problem):
        console_baud(dts)


NUCLEO = load_boards().get("nucleo_f746zg")
NRF = load_boards().get("nrf5340dk/nrf5340/cpuapp")


def test_port_by_usb_id_then_by_serial_number() -> None:
    ports = [
        PortInfo("/dev/ttyUSB0", 0x1A86, 0x7523, None),
        PortInfo("/dev/ttyACM0", 0x0483, 0x374B, "066DFF"),
    ]
    assert choose_port(ports, NUCLEO, None) == "/dev/ttyACM0"
    two = [*ports, PortInfo("/dev/ttyACM1", 0x0483, 0x374B, "0670AA")]
    assert choose_port(two, NUCLEO, "0670AA") == "/dev/ttyACM1"
    with pytest.raises(BoardError, match="2 boards with USB id 0483:374b"):
        choose_port(two, NUCLEO, None)


def test_probe_with_several_ports_uses_the_board_port_index() -> None:
    ports = [
        PortInfo("/dev/ttyACM3", 0x1366, 0x1055, "1050"),
        PortInfo("/dev/ttyACM2", 0x1366, 0x1055, "1050"),
    ]
    assert choose_port(ports, NRF, None) == "/dev/ttyACM2"
    second = parse_board(
        "b",
        {
            "transport": "serial",
            "toolchain": "x",
            "runner": "jlink",
            "usb": {"vid": "1366", "pid": "1055", "port_index": 1},
        },
    )
    assert choose_port(ports, second, None) == "/dev/ttyACM3"
    with pytest.raises(BoardError, match="should expose port #1, found only /dev/ttyACM2"):
        choose_port(ports[1:], second, None)


def test_no_matching_port_lists_what_is_there() -> None:
    with pytest.raises(BoardError) as err:
        choose_port([PortInfo("/dev/ttyUSB0", 0x1A86, 0x7523, "X")], NUCLEO, None)
    assert "no serial port with USB id 0483:374b" in err.value.message
    assert "/dev/ttyUSB0 (1a86:7523 sn=X)" in (err.value.hint or "")
    with pytest.raises(BoardError, match="serial number 123"):
        choose_port([], NUCLEO, "123")
    with pytest.raises(BoardError, match="has no usb entry"):
        choose_port([], load_boards().get("native_sim"), None)
