"""Transport helpers over real pipes and a pty (via pyserial), the command runner, safe extraction."""

from __future__ import annotations

import io
import os
import sys
import tarfile
import time
from pathlib import Path

import pytest
from microtvm_api import errors
from microtvm_api.archive import safe_extract
from microtvm_api.commands import quote_command, run_command
from microtvm_api.transport import FdTransport, SerialTransport, deadline_after, fd_read, fd_write


def test_fd_read_returns_what_is_there_and_times_out() -> None:
    r, w = os.pipe()
    transport = FdTransport(r, w)
    transport.write(b"abc", 1.0)
    assert transport.read(10, 1.0) == b"abc"
    start = time.monotonic()
    with pytest.raises(errors.IoTimeoutError, match="timed out"):
        transport.read(1, 0.1)
    assert 0.08 < time.monotonic() - start < 2
    transport.close()
    with pytest.raises(errors.TransportClosedError, match="already closed"):
        transport.read(1, 0.1)


def test_fd_read_eof_and_write_to_closed_reader() -> None:
    r, w = os.pipe()
    os.close(w)
    with pytest.raises(errors.TransportClosedError, match="end of file"):
        fd_read(r, 4, deadline_after(1.0))
    os.close(r)
    r, w = os.pipe()
    os.close(r)
    with pytest.raises(errors.TransportClosedError, match="closed by the reader"):
        fd_write(w, b"x", deadline_after(1.0))
    os.close(w)


def test_fd_write_times_out_when_the_pipe_stays_full() -> None:
    r, w = os.pipe()
    os.set_blocking(w, False)
    with pytest.raises(errors.IoTimeoutError):
        fd_write(w, b"x" * (4 << 20), deadline_after(0.2))
    os.close(r)
    os.close(w)


def test_serial_helpers_on_a_real_pty() -> None:
    serial = pytest.importorskip("serial")
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), baudrate=115200, timeout=0)
    import tty

    tty.setraw(master)
    transport = SerialTransport(port)
    try:
        os.write(master, b"hello device")
        got = b""
        while len(got) < 12:
            got += transport.read(64, 1.0)
        assert got == b"hello device"
        with pytest.raises(errors.IoTimeoutError, match="serial port"):
            transport.read(4, 0.1)
        transport.write(b"reply", 1.0)
        assert fd_read(master, 16, deadline_after(1.0)) == b"reply"
    finally:
        transport.close()
        os.close(master)
        os.close(slave)
    with pytest.raises(errors.TransportClosedError):
        transport.write(b"x", 0.1)


def test_run_command_logs_quoted_argv_and_streams_output(tmp_path: Path) -> None:
    log = io.StringIO()
    odd = "a b; rm -rf $HOME"  # reaches the tool as one argument, never a shell
    result = run_command(["printf", "%s|%s\\n", odd, "x"], cwd=tmp_path, log=log)
    assert result.output == f"{odd}|x\n"
    assert log.getvalue().splitlines()[0] == f"+ cd {tmp_path} && printf '%s|%s\\n' 'a b; rm -rf $HOME' x"
    assert f"{odd}|x" in log.getvalue()
    with pytest.raises(TypeError, match="never a shell"):
        run_command("echo hi")  # type: ignore[arg-type]


def test_run_command_failure_carries_exit_code_and_tail() -> None:
    log = io.StringIO()
    script = "import sys; print('compiling'); print('error: x.c:3: boom', file=sys.stderr); sys.exit(7)"
    with pytest.raises(errors.CommandFailedError) as info:
        run_command([sys.executable, "-c", script], log=log, env={"EXTRA_VAR": "1"})
    assert "failed with exit code 7" in info.value.message
    assert "error: x.c:3: boom" in info.value.message
    assert info.value.data["returncode"] == 7


def test_missing_tool_names_the_package() -> None:
    with pytest.raises(errors.ToolNotFoundError) as info:
        run_command(
            ["arm-none-eabi-gcc-does-not-exist", "--version"], package="gcc-arm-none-eabi", log=io.StringIO()
        )
    assert info.value.message == "arm-none-eabi-gcc-does-not-exist not found"
    assert info.value.hint == "apt-get install gcc-arm-none-eabi"
    with pytest.raises(errors.ToolNotFoundError, match="not found") as info:
        run_command(["no-such-tool-xyz"], log=io.StringIO())
    assert "put it on PATH" in (info.value.hint or "")


def test_run_command_timeout_kills_the_tool() -> None:
    start = time.monotonic()
    with pytest.raises(errors.CommandFailedError, match=r"did not finish within 0\.3 s"):
        run_command(["sleep", "30"], timeout_sec=0.3, log=io.StringIO())
    assert time.monotonic() - start < 5


def test_quote_command() -> None:
    assert quote_command(["gcc", "-DNAME=a b", Path("/x y/z.c")]) == "gcc '-DNAME=a b' '/x y/z.c'"


def _tar(path: Path, *members: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w") as tar:
        for member in members:
            if member.isfile():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


@pytest.mark.parametrize(
    ("member", "words"),
    [
        (_member("../evil.txt"), "'..' component"),
        (_member("a/../../evil.txt"), "'..' component"),
        (_member("/tmp/evil.txt"), "absolute path"),
        (_member("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (_member("hard", tarfile.LNKTYPE, "metadata.json"), "hard link"),
        (_member("dev", tarfile.CHRTYPE), "device"),
        (_member("fifo", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_unsafe_members_are_refused_before_anything_is_written(
    tmp_path: Path, member: tarfile.TarInfo, words: str
) -> None:
    archive = _tar(tmp_path / "evil.tar", _member("metadata.json"), member)
    dest = tmp_path / "project" / "model"
    with pytest.raises(errors.UnsafeArchiveError, match=words) as info:
        safe_extract(archive, dest)
    assert "nothing was written" in info.value.message
    assert not dest.exists() and not (tmp_path / "evil.txt").exists()


def test_symlink_already_in_the_project_cannot_lead_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "project"
    dest.mkdir()
    (dest / "src").symlink_to(outside)
    archive = _tar(tmp_path / "m.tar", _member("src/x.c"))
    with pytest.raises(errors.UnsafeArchiveError, match="outside"):
        safe_extract(archive, dest)
    assert not (outside / "x.c").exists()


def test_good_archive_extracts_files_and_modes(tmp_path: Path) -> None:
    script = _member("tools/run.sh")
    script.mode = 0o755
    archive = _tar(
        tmp_path / "ok.tar", _member("codegen", tarfile.DIRTYPE), _member("codegen/host/src/a.c"), script
    )
    written = safe_extract(archive, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "codegen/host/src/a.c",
        "tools/run.sh",
    ]
    assert os.access(tmp_path / "out" / "tools" / "run.sh", os.X_OK)


def test_unreadable_archives(tmp_path: Path) -> None:
    (tmp_path / "not.tar").write_bytes(b"this is not a tar file at all" * 40)
    with pytest.raises(errors.ArchiveError, match="cannot read"):
        safe_extract(tmp_path / "not.tar", tmp_path / "out")
    with pytest.raises(errors.ArchiveError, match="cannot read"):
        safe_extract(tmp_path / "missing.tar", tmp_path / "out")
    good = _tar(tmp_path / "good.tar", _member("metadata.json"), data=b"y" * 5000)
    (tmp_path / "trunc.tar").write_bytes(good.read_bytes()[:700])
    with pytest.raises(errors.ArchiveError):
        safe_extract(tmp_path / "trunc.tar", tmp_path / "out2")


def test_serial_write_after_the_other_side_hung_up() -> None:
    """A pty whose emulator end is gone answers writes with EIO: that is a closed transport, not a crash."""
    serial = pytest.importorskip("serial")
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), baudrate=115200, timeout=0)
    transport = SerialTransport(port)
    os.close(slave)
    os.close(master)  # the "emulator" exits
    try:
        with pytest.raises(errors.TransportClosedError, match="closed by the other side"):
            transport.write(b"hello", 1.0)
    finally:
        transport.close()
