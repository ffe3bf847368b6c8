"""The cortex_m template server: generate_project / build / flash / transport on a tiny hand-written MLF,
in process for the error paths and through a real Project API server subprocess for the whole flow."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cortex_m_firmware as fw
import pytest
from cortex_m_support import TEMPLATE_DIR, cm_server, require_qemu, require_toolchain
from cortex_m_tiny_mlf import expected_output, write_tiny_mlf
from microtvm_api.errors import (
    ArchiveError,
    CommandFailedError,
    InvalidOptionError,
    NotImplementedInTemplateError,
    ProjectExistsError,
    ToolNotFoundError,
    TransportClosedError,
    UnsafeArchiveError,
)
from microtvm_api.options import resolve

TEMPLATE = cm_server.CortexMHandler(TEMPLATE_DIR)


def opts(method: str, handler: cm_server.CortexMHandler | None = None, **given: Any) -> Mapping[str, Any]:
    saved = handler.saved_option_values() if handler is not None else None
    return resolve(cm_server.PROJECT_OPTIONS, method, given, saved=saved)


def generate(tmp_path: Path, board: str = "mps2_an386", name: str = "proj", **mlf_args: Any) -> Path:
    mlf = write_tiny_mlf(tmp_path / f"{name}.tar", **mlf_args)
    project = tmp_path / name
    TEMPLATE.generate_project(mlf, None, project, opts("generate_project", board=board))
    return project


@pytest.fixture(scope="module")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny project for mps2_an386, generated, built and flashed once for this module."""
    require_toolchain()
    project = generate(tmp_path_factory.mktemp("cm_server"))
    handler = cm_server.CortexMHandler(project)
    handler.build(opts("build", handler))
    handler.flash(opts("flash", handler))
    return project


def test_template_server_info_declares_boards_from_the_table() -> None:
    info = TEMPLATE.server_info_query("0.27.0").to_json()
    assert info["platform_name"] == "cortex_m" and info["is_template"] is True
    board = next(o for o in info["project_options"] if o["name"] == "board")
    assert board["choices"] == sorted(fw.load_boards())
    assert board["required"] == ["generate_project"]
    names = {o["name"] for o in info["project_options"]}
    assert {"opt_level", "compiler_flags", "qemu_icount", "verbose", "uart_baud", "stack_bytes"} <= names


def test_generate_project_lays_out_a_self_contained_project(tmp_path: Path) -> None:
    project = generate(tmp_path)
    for rel in (
        "microtvm_api_server.py",
        "cortex_m_firmware.py",
        "boards.yaml",
        "firmware/startup.c",
        "firmware/cortex_m.ld",
        "model.tar",
        "model/metadata.json",
        "model/runtime/src/server.c",
        "generated/board_config.h",
        "generated/board_memory.ld",
        "generated/model_glue.c",
    ):
        assert (project / rel).is_file(), rel
    saved = json.loads((project / "project_options.json").read_text())
    assert saved["board"] == "mps2_an386" and saved["stack_bytes"] == 8192
    handler = cm_server.CortexMHandler(project)
    info = handler.server_info_query("0.27.0").to_json()
    assert info["is_template"] is False and info["model_library_format_path"] == str(project / "model.tar")


def test_model_too_big_for_the_board_is_refused_at_generate(tmp_path: Path) -> None:
    with pytest.raises(fw.FirmwareError, match=r"arena 220.0 KB .* > 64.0 KB RAM on lm3s6965evb"):
        generate(tmp_path, board="lm3s6965evb", declared_arena_bytes=220 * 1024)
    assert not (tmp_path / "proj").exists()  # nothing half-made left behind


def test_generate_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "keep.txt").write_text("mine")
    with pytest.raises(ProjectExistsError, match="already exists and is not empty"):
        generate(tmp_path)
    assert (tmp_path / "proj" / "keep.txt").read_text() == "mine"


def test_generate_refuses_bad_archives(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        TEMPLATE.generate_project(
            tmp_path / "none.tar", None, tmp_path / "p1", opts("generate_project", board="mps2_an385")
        )
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as tar:
        info = tarfile.TarInfo("readme.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ArchiveError, match=r"no metadata\.json"):
        TEMPLATE.generate_project(empty, None, tmp_path / "p2", opts("generate_project", board="mps2_an385"))
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UnsafeArchiveError):
        TEMPLATE.generate_project(evil, None, tmp_path / "p3", opts("generate_project", board="mps2_an385"))
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "p2").exists() and not (tmp_path / "p3").exists()


def test_board_option_is_required_and_checked() -> None:
    with pytest.raises(InvalidOptionError, match="'board' is required by generate_project"):
        opts("generate_project")
    with pytest.raises(InvalidOptionError, match="board"):
        opts("generate_project", board="esp32")


def test_template_cannot_build_flash_or_open(tmp_path: Path) -> None:
    for call in (
        lambda: TEMPLATE.build(opts("build")),
        lambda: TEMPLATE.flash(opts("flash")),
        lambda: TEMPLATE.open_transport(opts("open_transport")),
    ):
        with pytest.raises(NotImplementedInTemplateError, match="create a project first"):
            call()


def test_project_cannot_generate_another(tmp_path: Path) -> None:
    project = generate(tmp_path)
    with pytest.raises(NotImplementedInTemplateError, match="generated project, not a template"):
        cm_server.CortexMHandler(project).generate_project(
            project / "model.tar", None, tmp_path / "other", opts("generate_project", board="mps2_an385")
        )


def test_build_for_another_board_is_refused(tmp_path: Path) -> None:
    handler = cm_server.CortexMHandler(generate(tmp_path))
    with pytest.raises(InvalidOptionError, match="generated for board 'mps2_an386', not 'mps2_an385'"):
        handler.build(opts("build", handler, board="mps2_an385"))


def test_missing_toolchain_names_the_apt_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = cm_server.CortexMHandler(generate(tmp_path))
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolNotFoundError, match="arm-none-eabi-gcc not found") as info:
        handler.build(opts("build", handler))
    assert "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" in str(info.value)


def test_flash_and_open_before_build(tmp_path: Path) -> None:
    handler = cm_server.CortexMHandler(generate(tmp_path))
    with pytest.raises(CommandFailedError, match="build the project first"):
        handler.flash(opts("flash", handler))
    if fw.shutil.which(fw.QEMU):
        with pytest.raises(CommandFailedError, match="nothing has been flashed"):
            handler.open_transport(opts("open_transport", handler))
    with pytest.raises(TransportClosedError, match="not open"):
        handler.read_transport(1, 0.1)


def test_build_reports_sections_and_usage(built_project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    handler = cm_server.CortexMHandler(built_project)
    handler.build(opts("build", handler))
    err = capfd.readouterr().err
    assert "&& arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2" in err
    assert "RAM used" in err and "FLASH used" in err and ".text" in err
    sizes = json.loads((built_project / "build" / "sizes.json").read_text())
    assert sizes[".text"] > 1000 and sizes[".stack"] >= 8192


def test_linker_overflow_becomes_a_plain_sentence(tmp_path: Path) -> None:
    require_toolchain()
    # metadata claims a small arena, the code really has 60 KB: only the linker can catch it.
    project = generate(tmp_path, board="lm3s6965evb", arena_bytes=60 * 1024, declared_arena_bytes=64)
    handler = cm_server.CortexMHandler(project)
    with pytest.raises(
        fw.FirmwareError,
        match=r"firmware does not fit lm3s6965evb: RAM overflowed by .* KB RAM on lm3s6965evb",
    ):
        handler.build(opts("build", handler))


def test_compiler_errors_show_the_command_and_output(tmp_path: Path) -> None:
    require_toolchain()
    handler = cm_server.CortexMHandler(generate(tmp_path))
    with pytest.raises(CommandFailedError, match=r"arm-none-eabi-gcc .* failed with exit code 1") as info:
        handler.build(opts("build", handler, compiler_flags="-DFOO -Werror=unknown-pragmas -fno-such-flag"))
    assert "fno-such-flag" in str(info.value)


def test_missing_qemu_names_the_apt_package(built_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = cm_server.CortexMHandler(built_project)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolNotFoundError) as info:
        handler.open_transport(opts("open_transport", handler))
    assert "apt-get install qemu-system-arm" in str(info.value)


@pytest.mark.slow
def test_whole_flow_through_a_server_subprocess(tmp_path: Path) -> None:
    """generate → build → flash → open_transport through the real stdio server, then a device session."""
    require_toolchain()
    require_qemu()
    from microtvm_api.client import ProjectAPIClient, ServerTransport
    from tvmc_micro.device import DeviceSession

    mlf = write_tiny_mlf(tmp_path / "tiny.tar", signature="feedfacecafebeef")
    project = tmp_path / "proj"
    with ProjectAPIClient.launch(TEMPLATE_DIR / "microtvm_api_server.py") as template:
        template.server_info_query("0.27.0")
        template.generate_project(mlf, None, project, {"board": "mps2_an385"})
    with ProjectAPIClient.launch(project / "microtvm_api_server.py") as client:
        info = client.server_info_query("0.27.0")
        assert info["is_template"] is False
        client.build({"opt_level": "Os"})
        client.flash({})
        transport = ServerTransport(client, {})
        assert transport.timeouts["session_start_timeout_sec"] > 0
        session = DeviceSession(transport, transport_name="QEMU mps2-an385")
        hello = session.open()
        assert (hello.model_name, hello.signature) == ("tiny", "feedfacecafebeef")
        x = bytes(range(100, 116))
        session.set_input(0, x)
        session.run()
        assert session.get_output(0) == expected_output(x)
        first, second = session.time_runs(5), session.time_runs(5)
        assert first.total_ticks == second.total_ticks  # icount: exactly repeatable
        qemu_pid = _qemu_pid(project)
        session.close()  # closes the transport: close_transport kills and reaps QEMU
    assert qemu_pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(qemu_pid, 0)


def _qemu_pid(project: Path) -> int | None:
    # The QEMU child of the server: found through /proc (the server owns it, not the test).
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                cmdline
                and cmdline[0].endswith(b"qemu-system-arm")
                and str(project).encode() in b" ".join(cmdline)
            ):
                return int(entry.name)
    return None


def test_build_without_runtime_sources_says_so(tmp_path: Path) -> None:
    project = generate(tmp_path)
    fw.shutil.rmtree(project / "model" / "runtime")
    handler = cm_server.CortexMHandler(project)
    with pytest.raises(ArchiveError, match="has no runtime/"):
        handler.build(opts("build", handler))


@pytest.mark.slow
def test_conformance_checker_passes() -> None:
    """The library's vendor conformance checker, run on this template's server as a user would."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "microtvm_api.conformance", str(TEMPLATE_DIR / "microtvm_api_server.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout


def test_project_with_a_damaged_board_record_says_so(tmp_path: Path) -> None:
    project = generate(tmp_path)
    saved = json.loads((project / "project_options.json").read_text())
    saved["board"] = "gone_board"
    (project / "project_options.json").write_text(json.dumps(saved))
    handler = cm_server.CortexMHandler(project)
    with pytest.raises(InvalidOptionError, match="records no known board: 'gone_board'"):
        handler.flash({"board": None})


@pytest.mark.slow
def test_qemu_icount_option_reaches_the_qemu_command(built_project: Path) -> None:
    require_qemu()
    from cortex_m_device import open_session

    handler = cm_server.CortexMHandler(built_project)
    with open_session(handler, qemu_icount=False) as session:
        assert handler._transport is not None and "-icount" not in handler._transport.argv
        x = bytes(range(16))
        session.set_input(0, x)
        session.run()
        assert session.get_output(0) == expected_output(x)
    with open_session(handler) as session:  # the default: exact instruction counting
        assert handler._transport is not None and "shift=0,align=off,sleep=off" in handler._transport.argv


def test_uart_baud_and_stack_options_reach_the_board_files(tmp_path: Path) -> None:
    mlf = write_tiny_mlf(tmp_path / "t.tar")
    project = tmp_path / "p"
    TEMPLATE.generate_project(
        mlf, None, project, opts("generate_project", board="lm3s6965evb", uart_baud=9600, stack_bytes=4096)
    )
    assert "#define BOARD_UART_BAUD 9600u" in (project / "generated" / "board_config.h").read_text()
    assert "STACK_SIZE = 0x1000;" in (project / "generated" / "board_memory.ld").read_text()
