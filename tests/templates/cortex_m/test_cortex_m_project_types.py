"""project_type on the cortex_m template: `standalone` firmware prints what `tvmc run` computes for the same
input, `mlperftiny` firmware answers the MLPerf Tiny runner's commands with the same outputs, on QEMU
mps2_an386; the input file, the options and the UART commands fail clearly when wrong."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cortex_m_device import make_project, open_session
from cortex_m_support import TEMPLATE_DIR, cm_server, require_qemu, require_toolchain
from cortex_m_tiny_mlf import expected_output, write_tiny_mlf
from microtvm_api import project_types as pt
from microtvm_api.errors import CommandFailedError, InvalidOptionError, NotImplementedInTemplateError
from microtvm_api.npz_input import model_input_bytes
from microtvm_api.options import resolve

from tests.conftest import REPO_ROOT, model_path

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import mlperftiny_runner as runner

KWS = "kws_ref_model.tflite"
BOARD = "mps2_an386"


# ---- helpers -----------------------------------------------------------------------------------------


def _project(mlf: Path, project_dir: Path, **options: Any) -> cm_server.CortexMHandler:
    """generate (with project-type options) + build + flash; flash runs a standalone image."""
    template = cm_server.CortexMHandler(TEMPLATE_DIR)
    gen = resolve(cm_server.PROJECT_OPTIONS, "generate_project", {"board": BOARD, **options})
    template.generate_project(mlf, None, project_dir, gen)
    handler = cm_server.CortexMHandler(project_dir)
    saved = handler.saved_option_values()
    handler.build(resolve(cm_server.PROJECT_OPTIONS, "build", {}, saved=saved))
    handler.flash(resolve(cm_server.PROJECT_OPTIONS, "flash", {}, saved=saved))
    return handler


def _standalone_outputs(project_dir: Path) -> dict[str, Any]:
    return json.loads((project_dir / "build" / pt.STANDALONE_OUTPUT_JSON).read_text())


def _generate_only(mlf: Path, project_dir: Path, **options: Any) -> None:
    template = cm_server.CortexMHandler(TEMPLATE_DIR)
    template.generate_project(
        mlf,
        None,
        project_dir,
        resolve(cm_server.PROJECT_OPTIONS, "generate_project", {"board": BOARD, **options}),
    )


def _quantized_inputs(
    shape: list[int], dtype: str = "int8", scale: float = 0.5847, zp: int = 83
) -> list[dict[str, Any]]:
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return [
        {
            "name": "input_1",
            "c_name": "input_1",
            "shape": shape,
            "dtype": dtype,
            "size_bytes": size,
            "quantization": {"scale": scale, "zero_point": zp},
        }
    ]


@pytest.fixture(scope="module")
def tiny_mlf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_mlf(tmp_path_factory.mktemp("tiny") / "tiny.tar")


# ---- the input file: converted exactly as tvmc run converts it ---------------------------------------


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("source", [np.float32, np.float64])
def test_float_input_is_quantized_like_tvmc_run(tmp_path: Path, dtype: str, source: type) -> None:
    from tvmc_micro.runner import make_inputs

    scale, zp = 0.5847, (83 if dtype == "int8" else 3)
    meta = _quantized_inputs([1, 49, 10, 1], dtype, scale, zp)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 40, (1, 49, 10, 1)).astype(source)
    ties = (np.arange(-20, 20) + 0.5) * np.float32(scale)  # halfway cases: numpy rounds them to even
    x.flat[: ties.size] = ties.astype(source)
    np.savez(tmp_path / "in.npz", input_1=x)
    blobs, notes = model_input_bytes(meta, tmp_path / "in.npz")
    want = make_inputs(meta, str(tmp_path / "in.npz"))[0]
    assert blobs == [want.tobytes()]
    assert notes and "quantizing float input 'input_1'" in notes[0]


def test_integer_and_float_inputs_convert_like_tvmc_run(tmp_path: Path) -> None:
    from tvmc_micro.runner import make_inputs

    meta = [
        {"name": "a", "shape": [2, 3], "dtype": "int8", "size_bytes": 6, "quantization": None},
        {"name": "b:0", "c_name": "b_0", "shape": [1, 4], "dtype": "float32", "size_bytes": 16},
    ]
    np.savez(
        tmp_path / "in.npz",
        a=np.array([[1, -2, 3], [4, 5, -128]], np.int32),
        b_0=np.array([0.1, 2, -3, 1e-3], np.float64).reshape(4),
    )  # by c_name, reshaped (size-1 dims)
    blobs, notes = model_input_bytes(meta, tmp_path / "in.npz")
    assert blobs == [a.tobytes() for a in make_inputs(meta, str(tmp_path / "in.npz"))] and not notes


def _npz_with_member(path: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent.npz", "file not found"),
        (lambda p: (p / "t.npz").write_text("not a zip") and p / "t.npz", "is not an .npz file"),
        (lambda p: _npz_with_member(p / "t.npz", "input_1.txt", b"x"), "is not a .npy array"),
        (
            lambda p: _npz_with_member(
                p / "t.npz", "input_1.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'"
            ),
            "header is truncated",
        ),
        (
            lambda p: np.savez(p / "t.npz", other=np.zeros(490, np.int8)) or p / "t.npz",
            "has arrays the model has no input for: 'other'",
        ),
        (
            lambda p: np.savez(p / "t.npz") or p / "t.npz",
            "has no array for input 'input_1' int8[1, 49, 10, 1]",
        ),
        (
            lambda p: np.savez(p / "t.npz", input_1=np.zeros((49, 11), np.int8)) or p / "t.npz",
            "has shape [49, 11], the model needs [1, 49, 10, 1]",
        ),
        (
            lambda p: np.savez(p / "t.npz", input_1=np.full((1, 49, 10, 1), 300, np.int16)) or p / "t.npz",
            "is int16, the model needs int8 (its values do not all fit)",
        ),
        (
            lambda p: (
                np.savez(p / "t.npz", input_1=np.full((1, 49, 10, 1), np.nan, np.float32)) or p / "t.npz"
            ),
            "NaN or infinite",
        ),
        (
            lambda p: np.savez(p / "t.npz", input_1=np.zeros((1, 49, 10, 1), np.complex64)) or p / "t.npz",
            "element type '<c8'",
        ),
        (
            lambda p: (
                np.savez(p / "t.npz", input_1=np.asfortranarray(np.zeros((49, 10), np.int8))) or p / "t.npz"
            ),
            "Fortran order",
        ),
    ],
)
def test_bad_input_files_are_refused_naming_the_problem(tmp_path: Path, make: Any, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InvalidOptionError) as info:
        model_input_bytes(_quantized_inputs([1, 49, 10, 1]), path)
    assert message in str(info.value) and info.value.data["option"] == "input"


def test_float_data_for_an_unquantized_integer_input_is_refused(tmp_path: Path) -> None:
    meta = [{"name": "x", "shape": [16], "dtype": "int8", "size_bytes": 16, "quantization": None}]
    np.savez(tmp_path / "in.npz", x=np.zeros(16, np.float32))
    with pytest.raises(InvalidOptionError, match="is float32, the model needs int8"):
        model_input_bytes(meta, tmp_path / "in.npz")


# ---- options ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"project_type": "standalone"}, "project_type standalone needs the input"),
        ({"input": "/x.npz"}, "'input' applies to project_type standalone, not host_driven"),
        ({"project_type": "mlperftiny"}, "project_type mlperftiny needs the benchmark's model id"),
        (
            {"project_type": "standalone", "input": "/x.npz", "mlperftiny_model": "kws01"},
            "'mlperftiny_model' applies to project_type mlperftiny, not standalone",
        ),
    ],
)
def test_option_combinations_that_mean_nothing_are_refused(
    tiny_mlf: Path, tmp_path: Path, options: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        _generate_only(tiny_mlf, tmp_path / "proj", **options)
    assert not (tmp_path / "proj").exists()  # nothing left behind


def test_unknown_model_id_and_project_type_are_refused() -> None:
    with pytest.raises(InvalidOptionError, match="mlperftiny_model"):
        resolve(
            cm_server.PROJECT_OPTIONS,
            "generate_project",
            {"board": BOARD, "project_type": "mlperftiny", "mlperftiny_model": "kws02"},
        )
    with pytest.raises(InvalidOptionError, match="project_type"):
        resolve(cm_server.PROJECT_OPTIONS, "generate_project", {"board": BOARD, "project_type": "hosted"})


def test_a_bad_input_file_fails_generate_project(tiny_mlf: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", x=np.zeros(15, np.int8))
    with pytest.raises(InvalidOptionError, match="has shape \\[15\\], the model needs \\[16\\]"):
        _generate_only(tiny_mlf, tmp_path / "proj", project_type="standalone", input=str(tmp_path / "in.npz"))
    assert not (tmp_path / "proj").exists()


def test_relative_input_is_read_from_the_clients_directory(tiny_mlf: Path, tmp_path: Path) -> None:
    """The server runs in the template directory: `input=in.npz` means the directory tvmc ran in (a path
    option: tvmc sends it absolute, and that is what the project keeps)."""
    np.savez(tmp_path / "in.npz", x=np.arange(16, dtype=np.int8))
    env = {"PYTHONPATH": f"{REPO_ROOT / 'client'}:{REPO_ROOT / 'project_api'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tvmc_micro.cli.main",
            "micro",
            "create-project",
            "proj",
            str(tiny_mlf),
            "cortex_m",
            "--project-option",
            f"board={BOARD}",
            "--project-option",
            "project_type=standalone",
            "--project-option",
            "input=in.npz",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "0x0f" in (tmp_path / "proj" / "generated" / pt.INPUT_SOURCE).read_text()
    saved = json.loads((tmp_path / "proj" / "project_options.json").read_text())
    assert saved["input"] == str(tmp_path / "in.npz")


def test_relative_input_through_the_client_api_from_another_directory(
    tiny_mlf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ProjectAPIClient (not only the CLI) resolves a path option against the caller's cwd."""
    from microtvm_api.client import ProjectAPIClient

    work = tmp_path / "work"
    work.mkdir()
    np.savez(work / "in.npz", x=np.arange(16, dtype=np.int8))
    monkeypatch.chdir(work)
    with ProjectAPIClient.launch(TEMPLATE_DIR, stderr_sink=None) as client:
        client.server_info_query()
        options = {"board": BOARD, "project_type": "standalone", "input": "in.npz"}
        client.generate_project(tiny_mlf, None, tmp_path / "proj", options)
    saved = json.loads((tmp_path / "proj" / "project_options.json").read_text())
    assert saved["input"] == str(work / "in.npz")
    assert "0x0f" in (tmp_path / "proj" / "generated" / pt.INPUT_SOURCE).read_text()


# ---- the standalone line format and the emulator run --------------------------------------------------


def test_standalone_lines_parse_and_bad_lines_are_named() -> None:
    text = (
        "boot noise\r\ntvmc-standalone-begin model=m signature=ab inputs=1 outputs=2\r\n"
        "tvmc-output index=0 dtype=float32 shape=1x2 values=0x3f800000,0xc0000000 name=out put\r\n"
        "tvmc-output index=1 dtype=int8 shape= values=-5 name=s\r\n"
        "tvmc-time ticks=10 timer_hz=25000000\r\ntvmc-standalone-end status=0\r\n"
    )
    report = pt.parse_standalone_output(text)
    assert (report.model, report.signature, report.status, report.ticks) == ("m", "ab", 0, 10)
    assert report.outputs[0].values == [1.0, -2.0] and report.outputs[0].name == "out put"
    assert report.outputs[1].shape == [] and report.outputs[1].values == [-5]
    with pytest.raises(CommandFailedError, match="malformed line"):
        pt.parse_standalone_output("tvmc-output index=0 dtype=int8 shape=2 values=1,x name=y\n")


def test_an_emulator_that_exits_or_hangs_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CommandFailedError, match="status 3 before the firmware printed") as info:
        pt.run_until_marker(
            ["sh", "-c", "echo partial; exit 3"], pt.STANDALONE_END, timeout_sec=10, log_path=tmp_path / "log"
        )
    assert "partial" in str(info.value) and info.value.data["exit_status"] == 3
    with pytest.raises(CommandFailedError, match="no 'tvmc-standalone-end' line within 0 s"):
        pt.run_until_marker(
            ["sh", "-c", "echo hi; exec sleep 30"],
            pt.STANDALONE_END,
            timeout_sec=0.3,
            log_path=tmp_path / "log",
        )


# ---- QEMU: standalone and mlperftiny against host_driven ---------------------------------------------


@pytest.mark.slow
def test_tiny_model_in_every_project_type(tiny_mlf: Path, tmp_path: Path) -> None:
    """The hand-made model (always available): host_driven session, standalone print and MLPerf results
    agree with each other and with y = 2x + 1."""
    require_toolchain()
    require_qemu()
    x = np.arange(-8, 8, dtype=np.int8)
    np.savez(tmp_path / "in.npz", x=x)
    host = make_project(tiny_mlf, tmp_path / "host", BOARD)
    with open_session(host) as session:
        session.set_input(0, x.tobytes())
        session.run()
        want = session.get_output(0)
    assert want == expected_output(x.tobytes())

    standalone = _project(
        tiny_mlf, tmp_path / "sa", project_type="standalone", input=str(tmp_path / "in.npz")
    )
    report = _standalone_outputs(standalone.project_dir)
    assert report["status"] == 0 and report["signature"] == "00112233aabbccdd"
    assert bytes(np.array(report["outputs"][0]["values"], np.int8).tobytes()) == want
    with pytest.raises(NotImplementedInTemplateError, match="standalone"):
        standalone.open_transport({"qemu_icount": True})

    mlperf = _project(tiny_mlf, tmp_path / "mp", project_type="mlperftiny", mlperftiny_model="ad01")
    with pytest.raises(NotImplementedInTemplateError, match="MLPerf Tiny"):
        mlperf.open_transport({"qemu_icount": True})
    with pytest.raises(SystemExit, match="is a standalone project, not mlperftiny"):
        runner.start_project(standalone.project_dir)
    stream = runner.start_project(mlperf.project_dir)  # as the script's main boots it
    try:
        dut = runner.Dut(stream)
        dut.drain()
        result = runner.run_benchmark(dut, x.tobytes(), iterations=3, warmups=1)
        _uart_errors(dut)
        again = runner.run_benchmark(dut, x.tobytes())  # the errors left the device usable
        # Characters lost or changed on the UART (the text protocol has no checksum): the runner reads the
        # buffer back, sends the load again, and gives up with a clear error after three tries.
        garbled = runner.Dut(_DamageDbChunks(stream, [_flip_digit, _drop_char]))
        healed = runner.run_benchmark(garbled, x.tobytes())
        hopeless = runner.Dut(_DamageDbChunks(stream, [_flip_digit] * 3))
        with pytest.raises(runner.DeviceError, match="failed 3 times; last: db print shows"):
            hopeless.load(x.tobytes())
    finally:
        stream.close()
    assert healed.raw == want
    assert result.raw == want == again.raw
    assert result.results == [float(v) for v in np.frombuffer(want, np.int8)]  # no quantization: as is
    assert (result.name, result.model, result.tvmc_model, result.tvmc_signature) == (
        "tvmc-micro",
        "ad01",
        "tiny",
        "00112233aabbccdd",
    )
    assert result.elapsed_us is not None and result.elapsed_us >= 0


def _flip_digit(line: bytes) -> bytes:
    digit = line[3:4]
    return line[:3] + (b"0" if digit != b"0" else b"1") + line[4:]


def _drop_char(line: bytes) -> bytes:
    return line[:3] + line[4:]


class _DamageDbChunks:
    """The real QEMU UART stream, with the first `db HEX` chunk of each of the next loads damaged."""

    def __init__(self, inner: Any, damages: list[Any]) -> None:
        self.inner, self.damages, self.in_load = inner, list(damages), False

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        return bytes(self.inner.read(n, timeout_sec))

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        if data.startswith(b"db load"):
            self.in_load = True
        elif data.startswith(b"db ") and not data.startswith(b"db print") and self.in_load and self.damages:
            data, self.in_load = self.damages.pop(0)(data), False
        self.inner.write(data, timeout_sec)

    def close(self) -> None:
        self.inner.close()


def _uart_errors(dut: runner.Dut) -> None:
    """Every malformed command gets an e- line, then m-ready (Dut.command raises on the e- line)."""
    cases = {
        "bogus": "Unknown command: bogus",
        "db": "requires a subcommand",
        "db load 0": "number of bytes >0",
        "db load 17": "exceeds the model's input size 16",
        "db load x": "number of bytes >0",
        "db 0": "Odd number of hex digits",
        "db zz": "Invalid hex digit in 'zz'",
        "infer 0": "iterations must be >0",
        "infer 1 -1": "warmup must be >=0",
        "infer 1 2 3": "Too many words",
        "infer x": "iterations must be >0: x",
        "x" * 300: "longer than 256 characters",
        "": "Empty command",
    }
    for command, message in cases.items():
        with pytest.raises(runner.DeviceError, match=message):
            dut.command(command)
    dut.command("db load 8")
    with pytest.raises(runner.DeviceError, match="Input db has 0 bytes, the model needs 16"):
        dut.command("infer 1 0")
    assert dut.command("timestamp")[0].startswith("m-lap-us-")


@pytest.mark.slow
def test_kws_standalone_and_mlperftiny_match_tvmc_run(compiled_mlf: Any, tmp_path: Path) -> None:
    """KWS (int8) from a float input: `tvmc run` on host_driven firmware, the standalone print and the
    MLPerf Tiny results are the same outputs."""
    require_toolchain()
    require_qemu()
    model_path(KWS)
    mlf = compiled_mlf(KWS, target="c -mcpu=cortex-m4")
    rng = np.random.default_rng(7)
    np.savez(tmp_path / "in.npz", input_1=rng.normal(0, 30, (1, 49, 10, 1)).astype(np.float32))

    make_project(mlf, tmp_path / "host", BOARD)
    env = {"PYTHONPATH": f"{REPO_ROOT / 'client'}:{REPO_ROOT / 'project_api'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tvmc_micro.cli.main",
            "run",
            "--device",
            "micro",
            str(tmp_path / "host"),
            "-i",
            str(tmp_path / "in.npz"),
            "-o",
            str(tmp_path / "out.npz"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    want = np.load(tmp_path / "out.npz")["Identity"].reshape(-1)

    standalone = _project(mlf, tmp_path / "sa", project_type="standalone", input=str(tmp_path / "in.npz"))
    report = _standalone_outputs(standalone.project_dir)
    np.testing.assert_array_equal(np.array(report["outputs"][0]["values"], np.int8), want)
    assert report["ticks"] > 0

    mlperf = _project(mlf, tmp_path / "mp", project_type="mlperftiny", mlperftiny_model="kws01")
    metadata = json.loads((mlperf.project_dir / "model" / "metadata.json").read_text())["models"][0]
    blobs, _ = model_input_bytes(metadata["inputs"], tmp_path / "in.npz")
    stream = runner.start_qemu(mlperf.project_dir)
    try:
        dut = runner.Dut(stream)
        dut.drain()
        result = runner.run_benchmark(dut, b"".join(blobs), iterations=2, warmups=1)
    finally:
        stream.close()
    np.testing.assert_array_equal(np.frombuffer(result.raw, np.int8), want)
    quant = metadata["outputs"][0]["quantization"]
    dequantized = (want.astype(np.float32) - np.float32(quant["zero_point"])) * np.float32(quant["scale"])
    np.testing.assert_array_equal(np.array(result.results, np.float32), dequantized)
    assert result.model == "kws01" and result.tvmc_signature == metadata["signature"]


@pytest.mark.slow
def test_float_model_standalone_prints_exact_floats(tmp_path: Path) -> None:
    """A small float model (always available: written by scripts/make_demo_model.py): the standalone
    firmware's float32 bits equal the host_driven session's outputs."""
    require_toolchain()
    require_qemu()
    pytest.importorskip("onnx")
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from make_demo_model import make_model
    from tvmc_micro.compiler import compile_model

    make_model(str(tmp_path / "demo.onnx"))
    mlf = tmp_path / "demo.tar"
    compile_model(tmp_path / "demo.onnx", mlf, target="c -mcpu=cortex-m4")
    x = np.random.default_rng(3).uniform(-1, 1, (1, 16)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    host = make_project(mlf, tmp_path / "host", BOARD)
    with open_session(host) as session:
        session.set_input(0, x.tobytes())
        session.run()
        want = np.frombuffer(session.get_output(0), np.float32)
    standalone = _project(mlf, tmp_path / "sa", project_type="standalone", input=str(tmp_path / "in.npz"))
    got = np.array(_standalone_outputs(standalone.project_dir)["outputs"][0]["values"], np.float32)
    np.testing.assert_array_equal(got, want)
    assert abs(float(want.sum()) - 1.0) < 1e-5  # a softmax: the model really ran


# ---- tvmc micro flash: the next step by project type --------------------------------------------------


@pytest.mark.parametrize(
    ("options", "next_step"),
    [
        ([], "flashed; next: tvmc run --device micro proj --print-time --print-top 3"),
        (
            ["project_type=standalone", "input=in.npz"],
            "flashed; the standalone firmware ran: its outputs are printed above and saved in proj/build/"
            "standalone_output.json",
        ),
        (
            ["project_type=mlperftiny", "mlperftiny_model=kws01"],
            "flashed; next: python3 scripts/mlperftiny_runner.py proj -i in.npz",
        ),
    ],
    ids=["host_driven", "standalone", "mlperftiny"],
)
def test_flash_says_what_to_do_next_for_the_project_type(
    tiny_mlf: Path, tmp_path: Path, options: list[str], next_step: str
) -> None:
    """`tvmc run` is the next step only for host_driven firmware (through the CLI, from the user's cwd)."""
    require_toolchain()
    require_qemu()
    np.savez(tmp_path / "in.npz", x=np.arange(16, dtype=np.int8))
    env = {"PYTHONPATH": f"{REPO_ROOT / 'client'}:{REPO_ROOT / 'project_api'}", "PATH": "/usr/bin:/bin"}
    settings = [a for o in [f"board={BOARD}", *options] for a in ("--project-option", o)]
    commands = [
        ["create-project", "proj", str(tiny_mlf), "cortex_m", *settings],
        ["build", "proj"],
        ["flash", "proj"],
    ]
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "tvmc_micro.cli.main", "micro", *command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(next_step), done.stderr
