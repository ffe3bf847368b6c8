"""The pieces of issue 15's build sizes that need no model: reading binutils' `size` (on a program gcc builds
here), a `size` that prints something else, crt_host's build without `size` on PATH, and sizes.json files
that are old or broken."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from microtvm_api.errors import CommandFailedError
from microtvm_api.image_sizes import measure, parse_berkeley, parse_sysv
from tvmc_micro.build_sizes import build_document, read_project_sizes
from tvmc_micro.errors import TvmcError
from tvmc_micro.json_output import SCHEMAS, check

REPO = Path(__file__).resolve().parents[2]


def _needs(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def test_sizes_of_a_program_built_here(tmp_path: Path) -> None:
    _needs("gcc", "size")
    (tmp_path / "p.c").write_text(
        "const unsigned char table[5000] = {1};\n"
        "unsigned char zeros[3000];\n"
        "int main(void) { return table[zeros[1]]; }\n"
    )
    subprocess.run(["gcc", "-O1", "-g", "p.c", "-o", "p"], cwd=tmp_path, check=True)
    sizes = measure("size", Path("p"), cwd=tmp_path)
    b = sizes["berkeley"]
    assert b["dec"] == b["text"] + b["data"] + b["bss"]
    assert b["text"] >= 5000 and b["bss"] >= 3000  # the table is read-only text, the zeros bss
    assert sizes["sections"][".rodata"] >= 5000 and sizes["sections"][".bss"] >= 3000
    assert not any(s.startswith((".debug", ".comment", ".note")) for s in sizes["sections"])  # not loaded
    assert sizes["image"] == "p" and sizes["size_tool"] == "size"


def test_size_output_that_is_not_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no Berkeley size line"):
        parse_berkeley("size: p: file format not recognized\n")
    assert parse_sysv("garbage\n.text\n") == {}
    # A "size" that answers with something else: a clear server error, not a traceback.
    fake = tmp_path / "fake-size"
    fake.write_text("#!/bin/sh\necho 'this is not binutils'\n")
    fake.chmod(0o755)
    with pytest.raises(CommandFailedError, match="printed no text/data/bss line"):
        measure(str(fake), Path("image.elf"), cwd=tmp_path)


def _crt_host_server() -> ModuleType:
    path = REPO / "template_projects" / "crt_host" / "microtvm_api_server.py"
    spec = importlib.util.spec_from_file_location("crt_host_server_for_sizes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crt_host_build_without_size_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = _crt_host_server()
    project = tmp_path / "p"
    (project / "build").mkdir(parents=True)
    (project / "build" / "sizes.json").write_text('{"berkeley": {"text": 1, "data": 2, "bss": 3, "dec": 6}}')
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no binutils here
    server.CrtHostHandler(project)._write_sizes()
    assert "`size` (binutils) not found" in capsys.readouterr().err
    assert not (project / "build" / "sizes.json").exists()  # the older build's figures are gone too
    doc = build_document(project, "crt_host", 1.5)
    assert check(doc, SCHEMAS["build"]) == []
    assert doc["sizes"] is None and doc["model"] is None and "wrote no build/sizes.json" in doc["notes"][0]


def test_old_and_broken_sizes_json(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    sizes = tmp_path / "build" / "sizes.json"
    sizes.write_text(json.dumps({".text": 100, ".bss": 8}))  # the form before `size -B` was recorded
    assert read_project_sizes(tmp_path) is None
    sizes.write_text("{half")
    with pytest.raises(TvmcError, match="cannot read"):
        read_project_sizes(tmp_path)


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", "analyze", *args], capture_output=True, text=True, timeout=120
    )


def test_analyze_of_a_broken_project(tmp_path: Path) -> None:
    from microtvm_api.mlf_metadata import MAX_METADATA_BYTES

    meta = tmp_path / "model" / "metadata.json"
    meta.parent.mkdir()
    meta.write_text("{not json")
    r = _analyze(str(tmp_path))
    assert r.returncode == 2 and "metadata.json" in r.stderr and "Traceback" not in r.stderr, r.stderr
    meta.write_text(" " * (MAX_METADATA_BYTES + 1))
    r = _analyze(str(tmp_path))
    assert r.returncode == 2 and f"larger than {MAX_METADATA_BYTES} bytes" in r.stderr, r.stderr
