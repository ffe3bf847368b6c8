"""Issue 15's code size and stack through the real CLI: `tvmc micro build --json` (schema tvmc-micro/build/1)
and `tvmc analyze` of a built project, whose numbers are checked against binutils' `size` run here on the
built image (cortex_m with KWS under arm-none-eabi-size, crt_host with the float hello-world model under the
host's size); the refusals of --build."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tvmc_micro.json_output import SCHEMAS, check

pytestmark = pytest.mark.slow


def tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=600
    )


def _ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def size_of(tool: str, image: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(Berkeley text/data/bss/dec, {section: bytes}) by running binutils' size here, independently."""
    berkeley = subprocess.run([tool, "-B", str(image)], capture_output=True, text=True, check=True).stdout
    header, values = berkeley.splitlines()[:2]
    assert header.split()[:4] == ["text", "data", "bss", "dec"]
    b = dict(zip(("text", "data", "bss", "dec"), map(int, values.split()[:4]), strict=True))
    sysv = subprocess.run([tool, "-A", str(image)], capture_output=True, text=True, check=True).stdout
    sections = {}
    for line in sysv.splitlines()[2:]:
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("."):
            sections[parts[0]] = int(parts[1])
    return b, sections


@pytest.fixture(scope="module")
def kws_cortex_m(compiled_mlf, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:  # type: ignore[no-untyped-def]
    """(MLF, built cortex_m project, its build --json file) of KWS on mps2_an386."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-size") is None:
        pytest.skip("arm-none-eabi-gcc/size not installed (apt-get install gcc-arm-none-eabi)")
    mlf = compiled_mlf("kws_ref_model.tflite", target="c -mcpu=cortex-m4")
    tmp = tmp_path_factory.mktemp("kws_cm_sizes")
    project = tmp / "p"
    board = "board=mps2_an386"
    _ok(tvmc("-q", "micro", "create-project", str(project), str(mlf), "cortex_m", "--project-option", board))
    _ok(tvmc("-q", "micro", "build", str(project), "--json", str(tmp / "build.json")))
    return mlf, project, tmp / "build.json"


def test_build_json_equals_size_output(kws_cortex_m: tuple[Path, Path, Path]) -> None:
    _, project, build_json = kws_cortex_m
    doc = json.loads(build_json.read_text())
    assert check(doc, SCHEMAS["build"]) == []
    assert doc["platform"] == "cortex_m" and doc["model"] == "kws_ref_model" and doc["notes"] == []
    sizes = doc["sizes"]
    berkeley, sections = size_of("arm-none-eabi-size", project / sizes["image"])
    assert sizes["berkeley"] == berkeley
    for name in (".isr_vector", ".text", ".rodata", ".data", ".bss", ".stack"):
        assert sizes["sections"][name] == sections[name], name
    assert not any(name.startswith(".debug") for name in sizes["sections"])
    assert sizes["usage"]["flash_bytes"] == berkeley["text"] + berkeley["data"]
    stack = sizes["stack"]
    assert 0 < stack["estimated_bytes"] <= stack["stack_bytes"] and stack["worst_path"][0] == "main"


def test_analyze_of_built_project_equals_size_and_metadata(
    kws_cortex_m: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    mlf, project, build_json = kws_cortex_m
    page = tmp_path / "a.html"
    png = tmp_path / "a.png"
    r = _ok(
        tvmc(
            "-q",
            "analyze",
            str(project),
            "--json",
            str(tmp_path / "a.json"),
            "--html",
            str(page),
            "--png",
            str(png),
        )
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((tmp_path / "a.json").read_text())
    assert check(doc, SCHEMAS["analyze"]) == []
    b = doc["build"]
    berkeley, _ = size_of("arm-none-eabi-size", project / "build" / "firmware.elf")
    assert b["sizes"]["berkeley"] == berkeley
    assert b["flash_bytes"] == berkeley["text"] + berkeley["data"]
    assert b["static_ram_bytes"] == berkeley["data"] + berkeley["bss"]
    meta = json.loads((project / "model" / "metadata.json").read_text())["models"][0]
    assert b["weight_bytes"] == meta["memory"]["constants_bytes"] == doc["totals"]["weight_bytes"]
    assert b["other_flash_bytes"] == b["flash_bytes"] - b["weight_bytes"] > 0
    built = json.loads(build_json.read_text())["sizes"]
    assert b["stack_estimate_bytes"] == built["stack"]["estimated_bytes"]
    assert f"flash: image {b['flash_bytes']:,} B" in r.stdout
    assert f"stack: about {b['stack_estimate_bytes']:,} B needed" in r.stdout
    assert f"flash: image {b['flash_bytes']:,} B" in page.read_text()
    # The MLF with --build (the project directory or the build's JSON) says the same.
    for build in (str(project), str(build_json)):
        _ok(tvmc("-q", "analyze", str(mlf), "--build", build, "--json", str(tmp_path / "b.json")))
        assert json.loads((tmp_path / "b.json").read_text())["build"] == b
    # Without a build: no code size, and the text says how to get it.
    r = _ok(tvmc("-q", "analyze", str(mlf), "--json", str(tmp_path / "c.json")))
    assert json.loads((tmp_path / "c.json").read_text())["build"] is None
    assert "code size: analyze a built project" in r.stdout


def test_build_refusals(kws_cortex_m: tuple[Path, Path, Path], compiled_mlf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mlf, project, build_json = kws_cortex_m
    other = compiled_mlf("hello_world_float.onnx")
    r = tvmc("analyze", str(other), "--build", str(build_json))
    assert r.returncode == 2 and "is a build of model 'kws_ref_model'" in r.stderr, r.stderr
    r = tvmc("analyze", str(mlf), "--build", str(tmp_path / "none.json"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    (tmp_path / "bad.json").write_text("{not json")
    r = tvmc("analyze", str(mlf), "--build", str(tmp_path / "bad.json"))
    assert r.returncode == 2 and "is not JSON" in r.stderr
    (tmp_path / "other.json").write_text(json.dumps({"schema": "tvmc-micro/run/1"}))
    r = tvmc("analyze", str(mlf), "--build", str(tmp_path / "other.json"))
    assert r.returncode == 2 and "is not a `tvmc micro build --json` file" in r.stderr
    (tmp_path / "null.json").write_text(json.dumps({"schema": "tvmc-micro/build/1", "sizes": None}))
    r = tvmc("analyze", str(mlf), "--build", str(tmp_path / "null.json"))
    assert r.returncode == 2 and "has no sizes" in r.stderr
    r = tvmc("analyze", str(mlf), "--build", str(tmp_path))  # a directory that is no built project
    assert r.returncode == 2 and "has no build sizes" in r.stderr
    r = tvmc("analyze", str(tmp_path))
    assert r.returncode == 2 and "not a generated project" in r.stderr
    r = tvmc("micro", "build", str(project), "--json", str(tmp_path / "no" / "b.json"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "building" not in r.stderr


def test_crt_host_build_json(compiled_mlf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("size") is None:
        pytest.skip("binutils' size is not installed")
    mlf = compiled_mlf("hello_world_float.onnx")
    project = tmp_path / "p"
    _ok(tvmc("-q", "micro", "create-project", str(project), str(mlf), "crt_host"))
    r = _ok(tvmc("-q", "micro", "build", str(project), "--json", str(tmp_path / "b.json")))
    doc = json.loads((tmp_path / "b.json").read_text())
    assert check(doc, SCHEMAS["build"]) == []
    berkeley, sections = size_of("size", project / "build" / "firmware")
    assert doc["sizes"]["berkeley"] == berkeley and doc["sizes"]["sections"][".text"] == sections[".text"]
    assert doc["sizes"]["stack"] is None and doc["sizes"]["usage"] is None
    assert "no stack estimate" in r.stderr
    r = _ok(tvmc("-q", "analyze", str(project)))
    assert f"text {berkeley['text']:,}" in r.stdout and "stack: no estimate" in r.stdout
