"""Real Zephyr builds: the sine model and KWS built with west, booted under QEMU (qemu_cortex_m3, and
mps2/an385 where a model needs more than 64 KiB of RAM) and as a native_sim process, run through the host
device session over the Project API, outputs equal to the crt_host build of the same MLF.

Needs a Zephyr tree: ZEPHYR_BASE=/path/to/zephyrproject/zephyr, `west` on PATH (Zephyr 4.2 wants it from a
Python >= 3.12.1 venv) or TVMC_ZEPHYR_WEST_CMD, arm-none-eabi-gcc (picolibc-arm-none-eabi with Debian's
toolchain), gcc-multilib for native_sim. Skipped otherwise (CI has no Zephyr tree).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TEMPLATE_DIR
from microtvm_api.client import ProjectAPIClient
from tvmc_micro.device import DeviceSession

ZEPHYR_BASE = os.environ.get("ZEPHYR_BASE", "")
WEST_CMD = os.environ.get("TVMC_ZEPHYR_WEST_CMD", "west")
CRT_HOST = TEMPLATE_DIR.parent / "crt_host"

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


class ClientTransport:
    """The device session's transport over a Project API server's read/write_transport calls."""

    def __init__(self, client: ProjectAPIClient) -> None:
        self.client = client

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        self.client.write_transport(data, timeout_sec)

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        return self.client.read_transport(n, timeout_sec)

    def close(self) -> None:
        self.client.close_transport()


def run_on_device(
    project: Path, inputs: list[np.ndarray], options: dict[str, Any]
) -> tuple[list[bytes], Any]:
    """Build, flash, open the transport and run each input; returns the outputs and the device info."""
    with ProjectAPIClient.launch(project) as client:
        client.build(options, timeout_sec=600)
        client.flash(options, timeout_sec=120)
        client.open_transport(options)
        session = DeviceSession(ClientTransport(client), open_timeout_sec=30)
        try:
            session.open()
            info = session.info()
            outputs = []
            for x in inputs:
                session.set_input(0, x.tobytes())
                assert session.run() >= 0
                outputs.append(session.get_output(0))
            timing = session.time_runs(2)
            assert timing.count == 2
        finally:
            session.close()
    return outputs, info


@pytest.fixture(scope="module")
def mlfs(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> dict[str, Path]:
    from tvmc_micro.compiler import compile_model

    root = tmp_path_factory.mktemp("zephyr_real_mlf")
    out = {}
    for key, name in (("sine", "hello_world_float.tflite"), ("kws", "kws_ref_model.tflite")):
        out[key] = root / f"{key}.tar"
        compile_model(models_dir / name, out[key])
    return out


def model_inputs(key: str) -> list[np.ndarray]:
    if key == "sine":
        return [np.array([[v]], dtype=np.float32) for v in (0.0, 1.0, 3.0, 5.5)]
    rng = np.random.default_rng(7)
    return [rng.integers(-128, 128, size=(1, 49, 10, 1), dtype=np.int8) for _ in range(3)]


_CRT_CACHE: dict[str, list[bytes]] = {}


def crt_host_outputs(key: str, mlf: Path, root: Path) -> list[bytes]:
    if key not in _CRT_CACHE:
        project = root / f"crt_{key}"
        with ProjectAPIClient.launch(CRT_HOST) as client:
            client.generate_project(mlf, None, project, {})
        _CRT_CACHE[key] = run_on_device(project, model_inputs(key), {})[0]
    return _CRT_CACHE[key]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("zephyr_real")


@pytest.mark.parametrize("board", ["qemu_cortex_m3", "native_sim"])
@pytest.mark.parametrize("key", ["sine", "kws"])
def test_model_on_zephyr_equals_crt_host(key: str, board: str, mlfs: dict[str, Path], work: Path) -> None:
    project = work / f"{key}_{board.replace('/', '_')}"
    options = {"board": board, "west_cmd": WEST_CMD}
    with ProjectAPIClient.launch(TEMPLATE_DIR) as template:
        template.generate_project(mlfs[key], None, project, options)
    started = time.monotonic()
    outputs, info = run_on_device(project, model_inputs(key), {"west_cmd": WEST_CMD})
    print(f"{key} on {board}: build+flash+run {time.monotonic() - started:.1f} s, timer {info.timer_hz} Hz")
    assert outputs == crt_host_outputs(key, mlfs[key], work)
