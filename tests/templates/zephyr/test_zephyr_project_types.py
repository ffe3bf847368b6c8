"""project_type on the zephyr template, at the generation level (Zephyr is not installed here): the files
each type generates, the CMake source list, and the exact emulator command a standalone flash runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import RecordingTools, call, generate
from microtvm_api import project_types as pt
from microtvm_api.errors import InvalidOptionError, NotImplementedInTemplateError, ServerError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cortex_m"))
from cortex_m_tiny_mlf import write_tiny_mlf

STANDALONE_TEXT = (
    "*** Booting Zephyr ***\r\n"
    "tvmc-standalone-begin model=tiny signature=00112233aabbccdd inputs=1 outputs=1\r\n"
    "tvmc-output index=0 dtype=int8 shape=16 values=1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 name=y\r\n"
    "tvmc-time ticks=1200 timer_hz=12000000\r\ntvmc-standalone-end status=0\r\n"
)


class StandaloneTools(RecordingTools):
    """RecordingTools that also records the standalone run and answers with a firmware's lines."""

    def __init__(self, text: str = STANDALONE_TEXT) -> None:
        super().__init__()
        self.text = text

    def run_until_marker(
        self, argv: Sequence[str], marker: str, *, timeout_sec: float, log_path: Path
    ) -> Any:
        from conftest import Call

        self.calls.append(Call("run_until_marker", [*argv, marker], log_path))
        return pt.CapturedRun(self.text, None)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_mlf(tmp_path / "tiny.tar")


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    np.savez(tmp_path / "in.npz", x=np.arange(16, dtype=np.int8))
    return tmp_path / "in.npz"


def _fake_build(handler: Any, name: str) -> None:
    image = handler.project_dir / "build" / "zephyr" / name
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"\x7fELF image")


def test_host_driven_is_the_default_and_unchanged(tiny: Path, tmp_path: Path) -> None:
    generate(tiny, tmp_path / "p", board="qemu_cortex_m3")
    src = tmp_path / "p" / "src"
    assert (src / "main.c").is_file() and not (src / "main_standalone.c").exists()
    assert not (src / "apps").exists() and not (src / pt.CONFIG_HEADER).exists()
    listed = (tmp_path / "p" / "app_sources.cmake").read_text()
    assert "src/main.c" in listed and "set(app_definitions TVMGEN_PROFILE)" in listed
    assert "${app_sources}" in (tmp_path / "p" / "CMakeLists.txt").read_text()


def test_standalone_generates_input_and_app_sources(tiny: Path, inputs: Path, tmp_path: Path) -> None:
    generate(tiny, tmp_path / "p", board="qemu_cortex_m3", project_type="standalone", input=str(inputs))
    project = tmp_path / "p"
    src = project / "src"
    for rel in (
        "main_standalone.c",
        "apps/tvmc_app.h",
        "apps/tvmc_standalone.c",
        "apps/tvmc_app_text.c",
        pt.INPUT_SOURCE,
        pt.CONFIG_HEADER,
        "platform_zephyr.c",
        "model_glue.c",
    ):
        assert (src / rel).is_file(), rel
    assert not (src / "main.c").exists() and not (src / "main_mlperftiny.c").exists()
    listed = (project / "app_sources.cmake").read_text()
    for rel in ("src/main_standalone.c", "src/apps/tvmc_standalone.c", f"src/{pt.INPUT_SOURCE}"):
        assert f"${{CMAKE_CURRENT_SOURCE_DIR}}/{rel}" in listed
    assert "set(app_definitions )" in listed and "src/apps\n" in listed
    data = (src / pt.INPUT_SOURCE).read_text()
    assert "0x00, 0x01, 0x02" in data and "tvmc_standalone_num_inputs = 1u" in data
    assert "#define TVMC_APP_INPUT_BYTES 16u" in (src / pt.CONFIG_HEADER).read_text()
    saved = json.loads((project / "project_options.json").read_text())
    assert saved["project_type"] == "standalone"


def test_mlperftiny_generates_the_model_id(tiny: Path, tmp_path: Path) -> None:
    generate(tiny, tmp_path / "p", board="mps2/an385", project_type="mlperftiny", mlperftiny_model="vww01")
    src = tmp_path / "p" / "src"
    assert (src / "main_mlperftiny.c").is_file() and (src / "apps" / "tvmc_mlperftiny.c").is_file()
    assert not (src / pt.INPUT_SOURCE).exists()
    header = (src / pt.CONFIG_HEADER).read_text()
    assert '#define TVMC_MLPERF_MODEL_ID "vww01"' in header and "TVMC_OUTPUT_SCALES {0.0f}" in header
    assert "src/apps/tvmc_mlperftiny.c" in (tmp_path / "p" / "app_sources.cmake").read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"project_type": "mlperftiny"}, "needs the benchmark's model id"),
        ({"project_type": "mlperftiny", "mlperftiny_model": "kws1"}, "mlperftiny_model"),
        ({"project_type": "standalone"}, "needs the input"),
    ],
)
def test_generation_refuses_bad_project_type_options(
    tiny: Path, tmp_path: Path, options: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        generate(tiny, tmp_path / "p", board="qemu_cortex_m3", **options)
    assert not (tmp_path / "p").exists()


def test_generation_refuses_a_bad_input_file(tiny: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", x=np.zeros(16, np.float32))  # float for an unquantized int8 input
    with pytest.raises(InvalidOptionError, match="is float32, the model needs int8"):
        generate(
            tiny,
            tmp_path / "p",
            board="qemu_cortex_m3",
            project_type="standalone",
            input=str(tmp_path / "in.npz"),
        )


@pytest.mark.parametrize(
    ("board", "image", "argv_tail"),
    [
        ("qemu_cortex_m3", "zephyr.elf", ["-nographic", "-monitor", "none", "-serial", "stdio", "-kernel"]),
        ("native_sim", "zephyr.exe", ["-uart_stdinout"]),
    ],
)
def test_standalone_flash_runs_the_emulator_and_reports(
    tiny: Path, inputs: Path, tmp_path: Path, board: str, image: str, argv_tail: list[str]
) -> None:
    handler = generate(tiny, tmp_path / "p", board=board, project_type="standalone", input=str(inputs))
    handler.tools = StandaloneTools()
    _fake_build(handler, image)
    call(handler, "flash")
    (run,) = handler.tools.calls
    flashed = str(handler.project_dir / "flashed" / image)
    assert run.kind == "run_until_marker" and run.argv[-1] == pt.STANDALONE_END
    assert flashed in run.argv and all(arg in run.argv for arg in argv_tail) and "pty" not in run.argv
    report = json.loads((handler.project_dir / "flashed" / pt.STANDALONE_OUTPUT_JSON).read_text())
    assert report["outputs"][0]["values"][:3] == [1, 3, 5] and report["status"] == 0
    with pytest.raises(NotImplementedInTemplateError, match="serves no `tvmc run` session"):
        call(handler, "open_transport")


def test_standalone_flash_reports_a_failed_run(tiny: Path, inputs: Path, tmp_path: Path) -> None:
    handler = generate(
        tiny, tmp_path / "p", board="qemu_cortex_m3", project_type="standalone", input=str(inputs)
    )
    handler.tools = StandaloneTools(
        "tvmc-standalone-begin model=tiny signature=0 inputs=1 outputs=1\ntvmc-standalone-end status=-1000\n"
    )
    _fake_build(handler, "zephyr.elf")
    with pytest.raises(ServerError, match="failed with status -1000"):
        call(handler, "flash")


def test_mlperftiny_project_refuses_the_rpc_transport(tiny: Path, tmp_path: Path) -> None:
    handler = generate(
        tiny, tmp_path / "p", board="qemu_cortex_m3", project_type="mlperftiny", mlperftiny_model="kws01"
    )
    _fake_build(handler, "zephyr.elf")
    call(handler, "flash")
    assert handler.tools.calls == []  # flashing an mlperftiny image runs nothing
    with pytest.raises(NotImplementedInTemplateError, match="mlperftiny"):
        call(handler, "open_transport")


# ---- scripts/mlperftiny_runner.py on a zephyr project: what it refuses before booting anything --------


def _runner() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
    import mlperftiny_runner

    return mlperftiny_runner


def test_runner_refuses_a_zephyr_project_it_cannot_boot(tiny: Path, inputs: Path, tmp_path: Path) -> None:
    runner = _runner()
    mlperf = dict(project_type="mlperftiny", mlperftiny_model="kws01")
    generate(tiny, tmp_path / "unflashed", board="qemu_cortex_m3", **mlperf)
    with pytest.raises(SystemExit, match="has not been flashed: run tvmc micro build and flash first"):
        runner.start_project(tmp_path / "unflashed")
    board = generate(tiny, tmp_path / "board", board="nucleo_l4r5zi", **mlperf)
    (board.project_dir / "flashed").mkdir()
    (board.project_dir / "flashed" / "flash.json").write_text('{"image": "zephyr.elf"}')
    with pytest.raises(SystemExit, match=r"nucleo_l4r5zi is a real board.*--port DEV"):
        runner.start_project(tmp_path / "board")
    generate(tiny, tmp_path / "host", board="qemu_cortex_m3")
    with pytest.raises(SystemExit, match="is a host_driven project, not mlperftiny"):
        runner.start_project(tmp_path / "host")
    generate(tiny, tmp_path / "sa", board="qemu_cortex_m3", project_type="standalone", input=str(inputs))
    with pytest.raises(SystemExit, match="is a standalone project, not mlperftiny"):
        runner.start_project(tmp_path / "sa")
    with pytest.raises(SystemExit, match="is not a cortex_m or zephyr project"):
        runner.start_project(tmp_path)
