"""Bounds on what a Model Library Format tar may unpack (issue 12 #2), with hostile tars built for real.

The limits are lowered through their environment variables (or ArchiveLimits) so the bombs stay small:
the code paths are the same ones a 2 GB member takes with the default limits.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from microtvm_api import archive
from microtvm_api.archive import ArchiveLimits, copy_bounded, read_member, safe_extract
from microtvm_api.client import ProjectAPIClient
from microtvm_api.errors import ArchiveError, UnsafeArchiveError

META = json.dumps({"models": [{"name": "m", "signature": "00ff", "inputs": [], "outputs": []}]}).encode()
MiB = 1024 * 1024
SMALL = ArchiveLimits(members=8, member_bytes=MiB, total_bytes=2 * MiB)


class _Zeros(io.RawIOBase):
    """`size` zero bytes, streamed (never held in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", size: int | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data) if size is None else size
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data) if size is None else _Zeros(size))


def _sparse_tar(path: Path, realsize: int) -> Path:
    """A GNU tar whose member is a sparse file of `realsize` bytes holding 512 stored bytes (what
    `tar --sparse` writes for a mostly-hole file): tarfile reads such members but cannot write them."""
    info = tarfile.TarInfo("parameters/weights.bin")
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 512
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[386:398] = b"%011o\0" % (realsize - 512)  # one data region: offset ...
    header[398:410] = b"%011o\0" % 512  # ... and length
    header[483:495] = b"%011o\0" % realsize  # the size the member unpacks to
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    with open(path, "wb") as out:
        meta = tarfile.TarInfo("metadata.json")
        meta.size = len(META)
        out.write(meta.tobuf(format=tarfile.GNU_FORMAT) + META + bytes(-len(META) % 512))
        out.write(bytes(header) + b"\x01" * 512 + bytes(1024))
    return path


def _gzip_bomb(path: Path, member_bytes: int) -> Path:
    """metadata.json plus one member of `member_bytes` zeros, gzip-compressed by streaming."""
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "metadata.json", META)
        _add(tar, "parameters/zeros.bin", size=member_bytes)
    return path


def _many_members(path: Path, count: int, each: int = 16) -> Path:
    with tarfile.open(path, "w") as tar:
        _add(tar, "metadata.json", META)
        for i in range(count):
            _add(tar, f"codegen/host/src/f{i}.c", size=each)
    return path


def _tvmc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, check=False,
    )


def test_sparse_member_is_refused_by_the_cli_and_the_server(
    tmp_path: Path, repo_root: Path, launch: Callable[..., ProjectAPIClient]
) -> None:
    mlf = _sparse_tar(tmp_path / "sparse.tar", realsize=2 * 1024 * MiB)
    assert mlf.stat().st_size < 8192 and tarfile.open(mlf).getmember("parameters/weights.bin").issparse()
    project = tmp_path / "proj"
    done = _tvmc("micro", "create-project", str(project), str(mlf), "crt_host")
    assert done.returncode == 2, done.stderr
    assert "'parameters/weights.bin' is a sparse file" in done.stderr and "Traceback" not in done.stderr
    assert not project.exists()
    with pytest.raises(UnsafeArchiveError, match="is a sparse file"):
        launch(repo_root / "template_projects" / "crt_host").generate_project(mlf, None, project, {})
    assert not project.exists()


def test_gzip_bomb_member_is_refused_before_it_is_written(
    tmp_path: Path, repo_root: Path, launch: Callable[..., ProjectAPIClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    mlf = _gzip_bomb(tmp_path / "bomb.tar.gz", member_bytes=8 * MiB)
    assert mlf.stat().st_size < 64 * 1024
    monkeypatch.setenv("MICROTVM_MLF_MAX_MEMBER_BYTES", str(MiB))  # the server inherits it
    project = tmp_path / "proj"
    with pytest.raises(ArchiveError, match=r"member 'parameters/zeros.bin' is 8,388,608 bytes, more than the "
                       r"limit of 1,048,576") as info:
        launch(repo_root / "template_projects" / "crt_host").generate_project(mlf, None, project, {})
    assert "MICROTVM_MLF_MAX_MEMBER_BYTES" in (info.value.hint or "")
    assert not project.exists()


def test_total_and_member_count_limits(tmp_path: Path) -> None:
    total = _many_members(tmp_path / "total.tar", count=3, each=800 * 1024)
    with pytest.raises(ArchiveError, match=r"members hold more than 2,097,152 bytes in all"):
        safe_extract(total, tmp_path / "p1", SMALL)
    assert not (tmp_path / "p1").exists()
    many = _many_members(tmp_path / "many.tar", count=20)
    with pytest.raises(ArchiveError, match=r"more than 8 members, more than the limit of 8"):
        safe_extract(many, tmp_path / "p2", SMALL)
    assert not (tmp_path / "p2").exists()
    # The same archives pass the default limits, which are sized for real MLFs.
    assert len(safe_extract(total, tmp_path / "p3")) == 4


def test_a_forged_huge_header_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "pax.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("metadata.json")
        info.size = len(META)
        info.pax_headers = {"comment": "x" * (2 * MiB)}
        tar.addfile(info, io.BytesIO(META))
    with pytest.raises(ArchiveError, match=r"a tar header asks to read 2,09\d,\d{3} bytes at once"):
        safe_extract(path, tmp_path / "p")


def test_the_stream_bound_refuses_reads_and_seeks_past_it(tmp_path: Path) -> None:
    raw = io.BytesIO(bytes(4096))
    stream = archive._BoundedStream(raw, limit=1000, tar_path=tmp_path / "x.tar")
    assert len(stream.read(512)) == 512
    with pytest.raises(ArchiveError, match=r"unpacks to more bytes than its members may hold.* of 1,000"):
        stream.read(1024)
    stream.seek(0)
    stream.seek(512, io.SEEK_CUR)
    with pytest.raises(ArchiveError, match="limit of 1,000"):
        stream.seek(600, io.SEEK_CUR)


def test_bytes_are_counted_while_copying(tmp_path: Path) -> None:
    out = io.BytesIO()
    with pytest.raises(ArchiveError, match=r"x\.bin unpacks to more than 1,000 bytes, more than its header"):
        copy_bounded(io.BytesIO(bytes(1001)), out, 1000, "x.bin")
    assert copy_bounded(io.BytesIO(bytes(1000)), io.BytesIO(), 1000, "x.bin") == 1000
    truncated = gzip.compress(random.Random(1).randbytes(100_000))[:2000]
    with pytest.raises(ArchiveError, match=r"y\.bin cannot be read: the archive is truncated or corrupt"):
        copy_bounded(gzip.GzipFile(fileobj=io.BytesIO(truncated)), io.BytesIO(), MiB, "y.bin")


def test_truncated_and_corrupt_archives(tmp_path: Path) -> None:
    whole = _many_members(tmp_path / "whole.tar", count=2, each=4096).read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[: 512 * 5])  # ends inside the second file's data
    with pytest.raises(ArchiveError, match="is truncated or corrupt"):
        safe_extract(cut, tmp_path / "p1")
    bad_gzip = tmp_path / "bad.tar.gz"
    bad_gzip.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    with pytest.raises(ArchiveError, match=r"cannot read .*bad\.tar\.gz as a tar archive"):
        safe_extract(bad_gzip, tmp_path / "p2")
    assert not (tmp_path / "p1").exists() and not (tmp_path / "p2").exists()


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROTVM_MLF_MAX_TOTAL_BYTES", "0x1000")
    assert ArchiveLimits.current().total_bytes == 4096
    for bad in ("lots", "-5", "0"):
        monkeypatch.setenv("MICROTVM_MLF_MAX_MEMBERS", bad)
        with pytest.raises(ArchiveError, match=f"MICROTVM_MLF_MAX_MEMBERS={bad!r} is not a positive integer"):
            ArchiveLimits.current()


def test_huge_metadata_json_is_refused_without_reading_it(tmp_path: Path) -> None:
    """The client reads metadata.json of the tar in place: one bigger than the cap is never loaded."""
    path = tmp_path / "fat.tar"
    with tarfile.open(path, "w") as tar:
        _add(tar, "metadata.json", size=5 * MiB)
    done = _tvmc("micro", "create-project", str(tmp_path / "p"), str(path), "crt_host")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "metadata.json is 5,242,880 bytes, more than the limit of 4,194,304" in done.stderr
    assert read_member(path, "other.json", 10) is None
