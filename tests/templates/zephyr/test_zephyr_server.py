"""The zephyr server without a Zephyr tree: project generation, options, and the exact argv of every
west / emulator / serial call at the template's one seam (RecordingTools)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE_DIR, RecordingTools, call, generate, server_module
from microtvm_api.client import ProjectAPIClient
from microtvm_api.errors import (
    CommandFailedError,
    InvalidOptionError,
    ServerError,
    ToolNotFoundError,
    TransportClosedError,
)
from zephyr_boards import BoardError, PortInfo

PY_WEST = f"{sys.executable} -m west"  # an existing executable, so the "west found" check passes


# ---- generate_project ----------------------------------------------------------------------------------


def test_generated_project_layout(sine_mlf: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    handler = generate(sine_mlf, project, board="qemu_cortex_m3", config_main_stack_size=3072)
    for rel in (
        "CMakeLists.txt",
        "prj.conf",
        "runtime_sources.cmake",
        "model.tar",
        "src/main.c",
        "src/platform_zephyr.c",
        "src/tvmrt_zephyr.h",
        "src/model_glue.c",
        "model/metadata.json",
        "microtvm_api_server.py",
        "zephyr_boards.py",
        "zephyr_io.py",
        "boards.yaml",
    ):
        assert (project / rel).is_file(), rel
    assert list((project / "model" / "codegen" / "host" / "src").glob("*.c"))
    conf = (project / "prj.conf").read_text()
    assert "CONFIG_UART_CONSOLE=n" in conf and "CONFIG_UART_INTERRUPT_DRIVEN=y" in conf
    assert conf.rstrip().endswith("CONFIG_MAIN_STACK_SIZE=3072")
    listed = (project / "runtime_sources.cmake").read_text()
    assert (
        "model/runtime/src/server.c" in listed and "platform/host" not in listed and "_test.c" not in listed
    )
    assert "tvmrt_firmware_model" in (project / "src" / "model_glue.c").read_text()
    saved = json.loads((project / "project_options.json").read_text())
    assert saved["board"] == "qemu_cortex_m3" and saved["config_main_stack_size"] == 3072
    assert not handler.is_template
    info = handler.server_info_query("0.27.0")
    assert info.model_library_format_path == str(project / "model.tar") and "build" in info.capabilities


def test_native_sim_project_polls_its_uart(sine_mlf: Path, tmp_path: Path) -> None:
    generate(sine_mlf, tmp_path / "p", board="native_sim")
    # native_sim's pty UART has no interrupt API: asking for it would abort Zephyr's Kconfig.
    assert "CONFIG_UART_INTERRUPT_DRIVEN" not in (tmp_path / "p" / "prj.conf").read_text()


def test_generate_refuses_a_non_empty_directory(sine_mlf: Path, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    with pytest.raises(ServerError, match="exists and is not empty"):
        generate(sine_mlf, tmp_path / "p", board="native_sim")
    assert (tmp_path / "p" / "keep.txt").read_text() == "mine"


def test_generate_refuses_an_unknown_board_before_writing(sine_mlf: Path, tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="did you mean nucleo_f746zg"):
        generate(sine_mlf, tmp_path / "p", board="nucleo_f746")
    assert not (tmp_path / "p").exists()


def test_over_stdio_template_info_and_bad_options(sine_mlf: Path, tmp_path: Path) -> None:
    """The real server process, launched by the library client: declared options and typed errors."""
    with ProjectAPIClient.launch(TEMPLATE_DIR / "microtvm_api_server.py", stderr_sink=None) as client:
        info = client.server_info_query("0.27.0")
        assert info["platform_name"] == "zephyr" and info["is_template"] is True
        names = {o["name"] for o in info["project_options"]}
        assert {
            "board",
            "zephyr_base",
            "west_cmd",
            "zephyr_toolchain_variant",
            "serial_number",
            "config_main_stack_size",
            "verbose",
        } <= names
        with pytest.raises(InvalidOptionError, match="config_main_stack_size' must be an integer"):
            client.generate_project(
                sine_mlf, None, tmp_path / "p", {"board": "native_sim", "config_main_stack_size": "big"}
            )
        with pytest.raises(InvalidOptionError, match="'board' is required by generate_project"):
            client.generate_project(sine_mlf, None, tmp_path / "p", {})
        client.generate_project(sine_mlf, None, tmp_path / "p", {"board": "native_sim"})
    with ProjectAPIClient.launch(tmp_path / "p", stderr_sink=None) as project:
        assert project.server_info_query("0.27.0")["is_template"] is False
        with pytest.raises(ServerError, match="no firmware image"):
            project.flash({})


# ---- build ---------------------------------------------------------------------------------------------


@pytest.fixture
def m3_project(sine_mlf: Path, tmp_path: Path) -> object:
    return generate(sine_mlf, tmp_path / "proj", board="qemu_cortex_m3")


def test_build_argv_and_environment(
    m3_project: object, fake_zephyr: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = m3_project
    monkeypatch.delenv("ZEPHYR_TOOLCHAIN_VARIANT", raising=False)
    monkeypatch.delenv("GNUARMEMB_TOOLCHAIN_PATH", raising=False)
    gnu = fake_zephyr.parent / "gnu"
    (gnu / "bin").mkdir(parents=True)
    gcc = gnu / "bin" / "arm-none-eabi-gcc"
    gcc.write_text("#!/bin/sh\n")
    gcc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{gnu / 'bin'}{os.pathsep}{os.environ['PATH']}")
    call(handler, "build", {"zephyr_base": str(fake_zephyr), "west_cmd": PY_WEST})
    (run,) = handler.tools.calls
    project = handler.project_dir
    # The recorded build made no image: no sizes, and the build still succeeded (the note says why).
    assert not (project / "build" / "sizes.json").exists()
    assert run.argv == [
        sys.executable,
        "-m",
        "west",
        "build",
        "-b",
        "qemu_cortex_m3",
        "-d",
        str(project / "build"),
        "--pristine",
        "auto",
        str(project),
    ]
    assert run.cwd == project
    assert run.env["ZEPHYR_BASE"] == str(fake_zephyr.resolve())
    assert run.env["ZEPHYR_TOOLCHAIN_VARIANT"] == "gnuarmemb"
    assert run.env["GNUARMEMB_TOOLCHAIN_PATH"] == str(gnu.resolve())


def test_build_uses_picolibc_when_the_toolchain_has_it(
    m3_project: object, fake_zephyr: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gnu = fake_zephyr.parent / "gnu"
    (gnu / "lib" / "picolibc" / "arm-none-eabi").mkdir(parents=True)
    (gnu / "lib" / "picolibc" / "arm-none-eabi" / "picolibc.specs").write_text("")
    monkeypatch.setenv("GNUARMEMB_TOOLCHAIN_PATH", str(gnu))
    monkeypatch.setenv("ZEPHYR_BASE", str(fake_zephyr))
    call(m3_project, "build", {"west_cmd": PY_WEST, "verbose": True})
    argv = m3_project.tools.calls[0].argv
    assert argv[:4] == [sys.executable, "-m", "west", "-v"]
    assert argv[-2:] == ["--", "-DTOOLCHAIN_HAS_PICOLIBC=ON"]


def test_build_option_and_env_choose_the_toolchain(
    sine_mlf: Path, tmp_path: Path, fake_zephyr: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = generate(sine_mlf, tmp_path / "ns", board="native_sim")
    monkeypatch.setenv("ZEPHYR_TOOLCHAIN_VARIANT", "llvm")
    call(handler, "build", {"zephyr_base": str(fake_zephyr), "west_cmd": PY_WEST})
    call(
        handler,
        "build",
        {"zephyr_base": str(fake_zephyr), "west_cmd": PY_WEST, "zephyr_toolchain_variant": "host"},
    )
    first, second = handler.tools.calls
    assert (
        first.env["ZEPHYR_TOOLCHAIN_VARIANT"] == "llvm" and second.env["ZEPHYR_TOOLCHAIN_VARIANT"] == "host"
    )
    assert "--" not in first.argv and first.argv[4:6] == ["-b", "native_sim"]


def test_build_without_zephyr_base_says_so(m3_project: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZEPHYR_BASE", raising=False)
    with pytest.raises(ServerError) as err:
        call(m3_project, "build", {"west_cmd": PY_WEST})
    assert "ZEPHYR_BASE is not set" in err.value.message and "zephyr_base=" in (err.value.hint or "")
    assert m3_project.tools.calls == []


def test_build_with_a_folder_that_is_not_zephyr(m3_project: object, tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="is not a Zephyr tree"):
        call(m3_project, "build", {"west_cmd": PY_WEST, "zephyr_base": str(tmp_path)})


def test_build_refuses_a_zephyr_3_tree(m3_project: object, fake_zephyr: Path) -> None:
    (fake_zephyr / "VERSION").write_text("VERSION_MAJOR = 3\nVERSION_MINOR = 2\nPATCHLEVEL = 0\n")
    with pytest.raises(ServerError, match=r"is Zephyr 3\.2\.0; this template needs Zephyr 4\.x"):
        call(m3_project, "build", {"west_cmd": PY_WEST, "zephyr_base": str(fake_zephyr)})


def test_zephyr_version_reads_the_tree_version_file(fake_zephyr: Path) -> None:
    from zephyr_project import zephyr_version

    (fake_zephyr / "VERSION").write_text(
        "VERSION_MAJOR = 4\nVERSION_MINOR = 2\nPATCHLEVEL = 0\nVERSION_TWEAK = 0\nEXTRAVERSION = rc1\n"
    )
    assert zephyr_version(fake_zephyr) == (4, "4.2.0-rc1")
    (fake_zephyr / "VERSION").write_text("VERSION_MAJOR = four\nVERSION_MINOR = 2\n")
    with pytest.raises(ServerError, match="not a Zephyr tree"):
        zephyr_version(fake_zephyr)


def test_build_for_another_board_than_generated(m3_project: object, fake_zephyr: Path) -> None:
    with pytest.raises(BoardError) as err:
        call(
            m3_project, "build", {"board": "native_sim", "west_cmd": PY_WEST, "zephyr_base": str(fake_zephyr)}
        )
    assert "generated for qemu_cortex_m3, not native_sim" in err.value.message
    assert m3_project.tools.calls == []


def test_build_without_west(m3_project: object, fake_zephyr: Path) -> None:
    with pytest.raises(ToolNotFoundError) as err:
        call(m3_project, "build", {"west_cmd": "/nonexistent/west", "zephyr_base": str(fake_zephyr)})
    assert "west not found" in err.value.message and "pip install west" in (err.value.hint or "")


def test_build_refuses_a_model_too_big_for_the_board(m3_project: object, fake_zephyr: Path) -> None:
    meta_path = m3_project.project_dir / "model" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["models"][0]["memory"]["arena_bytes"] = 60000
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CommandFailedError) as err:
        call(m3_project, "build", {"west_cmd": PY_WEST, "zephyr_base": str(fake_zephyr)})
    assert "more than the 65536 B qemu_cortex_m3 has" in err.value.message
    assert "mps2/an385" in (err.value.hint or "")
    assert m3_project.tools.calls == []


def test_build_and_flash_need_a_generated_project(fake_zephyr: Path) -> None:
    template = server_module.ZephyrHandler(tools=RecordingTools())
    with pytest.raises(ServerError, match="needs a generated project"):
        template.build({"board": "native_sim", "west_cmd": PY_WEST, "zephyr_base": str(fake_zephyr)})


# ---- flash ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("board", "runner", "serial", "tail"),
    [
        ("nucleo_l4r5zi", None, "066DFF", ["--runner", "openocd", "--serial", "066DFF"]),
        ("mimxrt1050_evk", None, "000600101234", ["--runner", "jlink", "--dev-id", "000600101234"]),
        ("nrf5340dk/nrf5340/cpuapp", None, None, ["--runner", "nrfjprog"]),
        ("nucleo_f746zg", "jlink", "77", ["--runner", "jlink", "--dev-id", "77"]),
    ],
)
def test_flash_argv(
    sine_mlf: Path,
    tmp_path: Path,
    fake_zephyr: Path,
    board: str,
    runner: str | None,
    serial: str | None,
    tail: list[str],
) -> None:
    handler = generate(sine_mlf, tmp_path / "p", board=board)
    options = {"west_cmd": PY_WEST, "zephyr_base": str(fake_zephyr)}
    if runner:
        options["west_runner"] = runner
    if serial:
        options["serial_number"] = serial
    call(handler, "flash", options)
    (run,) = handler.tools.calls
    assert run.argv == [
        sys.executable,
        "-m",
        "west",
        "flash",
        "-d",
        str(handler.project_dir / "build"),
        *tail,
    ]
    assert run.env["ZEPHYR_BASE"] == str(fake_zephyr.resolve())


def test_flash_runner_without_serial_selection(sine_mlf: Path, tmp_path: Path, fake_zephyr: Path) -> None:
    handler = generate(sine_mlf, tmp_path / "p", board="nucleo_f746zg")
    with pytest.raises(BoardError, match="'stm32cubeprogrammer' cannot select a probe by serial number"):
        call(
            handler,
            "flash",
            {
                "west_cmd": PY_WEST,
                "zephyr_base": str(fake_zephyr),
                "west_runner": "stm32cubeprogrammer",
                "serial_number": "1",
            },
        )


def _fake_build(handler: object, name: str) -> Path:
    image = handler.project_dir / "build" / "zephyr" / name
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\x7fELF firmware bytes")
    return image


def test_emulated_flash_records_the_image(m3_project: object) -> None:
    with pytest.raises(ServerError, match="build the project first"):
        call(m3_project, "flash")
    image = _fake_build(m3_project, "zephyr.elf")
    call(m3_project, "flash")
    flashed = m3_project.project_dir / "flashed"
    assert (flashed / "zephyr.elf").read_bytes() == image.read_bytes()
    record = json.loads((flashed / "flash.json").read_text())
    assert record["board"] == "qemu_cortex_m3" and len(record["sha256"]) == 64
    assert m3_project.tools.calls == []  # no west for an emulated board
    # Flashing is a snapshot: a later build does not change what runs until the next flash.
    image.write_bytes(b"rebuilt")
    assert (flashed / "zephyr.elf").read_bytes() != b"rebuilt"


# ---- open_transport ------------------------------------------------------------------------------------


def test_qemu_transport_argv_and_loopback_io(m3_project: object) -> None:
    with pytest.raises(ServerError, match="nothing flashed yet"):
        call(m3_project, "open_transport")
    _fake_build(m3_project, "zephyr.elf")
    call(m3_project, "flash")
    timeouts = call(m3_project, "open_transport")
    (start,) = m3_project.tools.calls
    image = str(m3_project.project_dir / "flashed" / "zephyr.elf")
    assert start.kind == "emulator:qemu"
    assert start.argv == [
        "qemu-system-arm",
        "-cpu",
        "cortex-m3",
        "-machine",
        "lm3s6965evb",
        "-icount",
        "shift=6,align=off,sleep=off",
        "-rtc",
        "clock=vm",
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "pty",
        "-kernel",
        image,
    ]
    assert start.cwd == m3_project.project_dir / "flashed" / "qemu.log"
    assert timeouts.session_start_timeout_sec > 0
    m3_project.write_transport(b"\x7e\x01ping", 1.0)
    assert m3_project.read_transport(64, 1.0) == b"\x7e\x01ping"
    m3_project.close_transport()
    with pytest.raises(TransportClosedError, match="call open_transport first"):
        m3_project.read_transport(1, 0.1)


def test_native_sim_transport_argv(sine_mlf: Path, tmp_path: Path) -> None:
    handler = generate(sine_mlf, tmp_path / "ns", board="native_sim/native/64")
    _fake_build(handler, "zephyr.exe")
    call(handler, "flash")
    call(handler, "open_transport")
    (start,) = handler.tools.calls
    assert start.kind == "emulator:native"
    assert start.argv == [str(handler.project_dir / "flashed" / "zephyr.exe"), "--wait_uart"]
    handler.close_transport()


def test_serial_transport_finds_port_and_baud(sine_mlf: Path, tmp_path: Path) -> None:
    handler = generate(sine_mlf, tmp_path / "p", board="nucleo_f746zg")
    handler.tools = RecordingTools(
        [PortInfo("/dev/ttyS0", None, None, None), PortInfo("/dev/ttyACM0", 0x0483, 0x374B, "066DFF")]
    )
    with pytest.raises(ServerError, match="no built devicetree"):
        call(handler, "open_transport")
    dts = handler.project_dir / "build" / "zephyr" / "zephyr.dts"
    dts.parent.mkdir(parents=True)
    dts.write_text(
        "/ {\n\tchosen {\n\t\tzephyr,console = &usart3;\n\t};\n\tusart3: serial@40004800 {\n"
        "\t\tcurrent-speed = < 0x1c200 >;\n\t};\n};\n"
    )
    call(handler, "open_transport")
    assert [(c.kind, c.argv) for c in handler.tools.calls[-2:]] == [
        ("list_serial_ports", []),
        ("open_serial", ["/dev/ttyACM0", "115200"]),
    ]
    handler.close_transport()
    call(handler, "open_transport", {"serial_port": "/dev/ttyUSB7", "baud_rate": 921600})
    assert handler.tools.calls[-1].argv == ["/dev/ttyUSB7", "921600"]
    handler.close_transport()


def test_serial_transport_wrong_serial_number(sine_mlf: Path, tmp_path: Path) -> None:
    handler = generate(sine_mlf, tmp_path / "p", board="nucleo_l4r5zi", serial_number="NOPE")
    handler.tools = RecordingTools([PortInfo("/dev/ttyACM0", 0x0483, 0x374B, "066DFF")])
    with pytest.raises(BoardError, match="no serial port with serial number NOPE"):
        call(handler, "open_transport", {"baud_rate": 115200})
