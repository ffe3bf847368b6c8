"""Real Zephyr builds through the real CLI: the sine model and KWS compiled once, then for each board
`tvmc micro create-project ... zephyr`, `build`, `flash` and `tvmc run --device micro`, outputs equal to the
crt_host project built from the same MLF with the same inputs. QEMU boots qemu_cortex_m3; native_sim runs
as a Linux process.

Needs a Zephyr tree: ZEPHYR_BASE=/path/to/zephyrproject/zephyr, `west` on PATH (Zephyr 4.2 wants it from a
Python >= 3.12.1 venv) or TVMC_ZEPHYR_WEST_CMD, arm-none-eabi-gcc (plus picolibc-arm-none-eabi with Debian's
toolchain), gcc-multilib for native_sim. Skipped otherwise: CI has no Zephyr tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

ZEPHYR_BASE = os.environ.get("ZEPHYR_BASE", "")
WEST_CMD = os.environ.get("TVMC_ZEPHYR_WEST_CMD", "west")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (ZEPHYR_BASE and (Path(ZEPHYR_BASE) / "VERSION").is_file()),
        reason="needs a Zephyr tree: set ZEPHYR_BASE to the zephyr/ folder of a west workspace",
    ),
    pytest.mark.skipif(
        shutil.which(WEST_CMD.split()[0]) is None,
        reason="west not found: put a venv's west on PATH or set TVMC_ZEPHYR_WEST_CMD",
    ),
]

MODELS = {"sine": "hello_world_float.tflite", "kws": "kws_ref_model.tflite"}


def tvmc(*args: str, timeout: float = 900) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, (
        f"tvmc {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr[-4000:]}"
    )
    return r.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zephyr_real")


_COMPILED: dict[str, tuple[Path, Path]] = {}


def compiled(key: str, work: Path, models_dir: Path) -> tuple[Path, Path]:
    """The model's MLF and an inputs .npz (random, fixed seed), made once for every board."""
    if key not in _COMPILED:
        mlf = work / f"{key}.tar"
        tvmc("compile", str(models_dir / MODELS[key]), "-o", str(mlf))
        with tarfile.open(mlf) as tar:
            model = json.load(tar.extractfile("metadata.json"))["models"][0]  # type: ignore[arg-type]
        rng = np.random.default_rng(11)
        arrays = {}
        for spec in model["inputs"]:
            if spec["dtype"] == "float32":
                arrays[spec["name"]] = rng.uniform(0, 6.28, size=spec["shape"]).astype(np.float32)
            else:
                arrays[spec["name"]] = rng.integers(-128, 128, size=spec["shape"], dtype=np.int8)
        inputs = work / f"{key}_in.npz"
        np.savez(inputs, **arrays)
        _COMPILED[key] = (mlf, inputs)
    return _COMPILED[key]


def run_project(
    project: Path, mlf: Path, platform: str, inputs: Path, *options: str
) -> dict[str, np.ndarray]:
    flags = [arg for option in options for arg in ("--project-option", option)]
    tvmc("micro", "create-project", str(project), str(mlf), platform, *flags)
    tvmc("micro", "build", str(project))
    tvmc("micro", "flash", str(project))
    outputs = project.parent / f"{project.name}_out.npz"
    printed = tvmc(
        "run", "--device", "micro", str(project), "-i", str(inputs), "-o", str(outputs), "--print-time"
    )
    assert "on-device time" in printed
    with np.load(outputs) as data:
        return {name: data[name] for name in data.files}


_CRT: dict[str, dict[str, np.ndarray]] = {}
_HOST_DRIVEN: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def host_driven_outputs(key: str, board: str, work: Path, models_dir: Path) -> dict[str, np.ndarray]:
    """`tvmc run` on the host_driven Zephyr firmware (built once per model and board)."""
    if (key, board) not in _HOST_DRIVEN:
        mlf, inputs = compiled(key, work, models_dir)
        started = time.monotonic()
        project = work / f"{key}_{board}"
        got = run_project(project, mlf, "zephyr", inputs, f"board={board}", f"west_cmd={WEST_CMD}")
        print(f"{key} on {board}: create+build+flash+run {time.monotonic() - started:.1f} s")
        _HOST_DRIVEN[(key, board)] = got
    return _HOST_DRIVEN[(key, board)]


@pytest.mark.parametrize("board", ["qemu_cortex_m3", "native_sim"])
@pytest.mark.parametrize("key", list(MODELS))
def test_model_on_zephyr_equals_crt_host(key: str, board: str, work: Path, models_dir: Path) -> None:
    mlf, inputs = compiled(key, work, models_dir)
    if key not in _CRT:
        _CRT[key] = run_project(work / f"crt_{key}", mlf, "crt_host", inputs)
    got = host_driven_outputs(key, board, work, models_dir)
    assert got.keys() == _CRT[key].keys()
    for name, expected in _CRT[key].items():
        np.testing.assert_array_equal(got[name], expected, err_msg=f"{key} output {name} on {board}")


@pytest.mark.parametrize("board", ["qemu_cortex_m3", "native_sim"])
def test_build_json_reports_what_size_says(board: str, work: Path, models_dir: Path) -> None:
    """`tvmc micro build --json` on a Zephyr build gives the Berkeley figures binutils' size prints."""
    key = next(iter(MODELS))
    host_driven_outputs(key, board, work, models_dir)  # builds the project once
    project = work / f"{key}_{board}"
    report = work / f"{key}_{board}_build.json"
    tvmc("micro", "build", str(project), "--json", str(report))
    sizes = json.loads(report.read_text())["sizes"]
    tool = "size" if board == "native_sim" else "arm-none-eabi-size"
    out = subprocess.run([tool, "-B", "build/zephyr/zephyr.elf"], cwd=project, capture_output=True,
                         text=True, check=True).stdout.split("\n")[1].split()
    assert sizes["berkeley"] == dict(zip(("text", "data", "bss", "dec"), map(int, out[:4]), strict=True))


# ---- project_type standalone and mlperftiny: the same outputs as host_driven -----------------------------


def create_build_flash(project: Path, mlf: Path, *options: str) -> str:
    flags = [arg for option in (f"west_cmd={WEST_CMD}", *options) for arg in ("--project-option", option)]
    tvmc("micro", "create-project", str(project), str(mlf), "zephyr", *flags)
    tvmc("micro", "build", str(project))
    return tvmc_stderr("micro", "flash", str(project))


def tvmc_stderr(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, f"tvmc {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-4000:]}"
    return r.stderr


@pytest.mark.parametrize("key", list(MODELS))
def test_standalone_on_qemu_cortex_m3_prints_the_host_driven_outputs(
    key: str, work: Path, models_dir: Path
) -> None:
    """sine: float32 outputs, printed as their bits; KWS: int8."""
    board = "qemu_cortex_m3"
    mlf, inputs = compiled(key, work, models_dir)
    want = host_driven_outputs(key, board, work, models_dir)
    project = work / f"{key}_{board}_standalone"
    printed = create_build_flash(project, mlf, f"board={board}", "project_type=standalone", f"input={inputs}")
    assert "tvmc-standalone-end status=0" in printed
    report = json.loads((project / "flashed" / "standalone_output.json").read_text())
    metadata = json.loads((project / "model" / "metadata.json").read_text())["models"][0]
    assert report["status"] == 0 and report["signature"] == metadata["signature"] and report["ticks"] > 0
    assert [o["name"] for o in report["outputs"]] == list(want)
    for out in report["outputs"]:
        got = np.array(out["values"], out["dtype"]).reshape(out["shape"])
        np.testing.assert_array_equal(got, want[out["name"]], err_msg=f"{key} standalone {out['name']}")


@pytest.mark.parametrize("board", ["qemu_cortex_m3", "native_sim"])
def test_mlperftiny_answers_the_runner_with_the_host_driven_outputs(
    board: str, work: Path, models_dir: Path
) -> None:
    """scripts/mlperftiny_runner.py (the MLPerf Tiny runner's commands) boots the flashed project itself
    (QEMU: interrupt-driven UART reception; native_sim: polled)."""
    mlf, inputs = compiled("kws", work, models_dir)
    want = host_driven_outputs("kws", board, work, models_dir)
    project = work / f"kws_{board}_mlperftiny"
    flashed = create_build_flash(
        project, mlf, f"board={board}", "project_type=mlperftiny", "mlperftiny_model=kws01"
    )
    assert "next: python3 scripts/mlperftiny_runner.py" in flashed
    runner = Path(__file__).resolve().parents[3] / "scripts" / "mlperftiny_runner.py"
    out = work / "kws_mlperftiny_out.npz"
    r = subprocess.run(
        [sys.executable, str(runner), str(project), "-i", str(inputs), "-n", "2", "-w", "1", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    metadata = json.loads((project / "model" / "metadata.json").read_text())["models"][0]
    assert (result["name"], result["model"], result["tvmc_model"]) == ("tvmc-micro", "kws01", "kws_ref_model")
    assert result["tvmc_signature"] == metadata["signature"] and result["elapsed_us"] > 0
    with np.load(out) as got:
        assert list(got.files) == list(want)
        for name, expected in want.items():
            np.testing.assert_array_equal(got[name], expected, err_msg=f"mlperftiny output {name}")
    (spec,) = metadata["outputs"]
    quant = spec["quantization"]
    expected = want[spec["name"]].reshape(-1).astype(np.float32)
    dequantized = (expected - np.float32(quant["zero_point"])) * np.float32(quant["scale"])
    np.testing.assert_array_equal(np.array(result["results"], np.float32), dequantized)
