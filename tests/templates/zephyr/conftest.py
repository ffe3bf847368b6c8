"""Fixtures for the zephyr template: its modules imported from the template folder, a recording `Tools`
(the template's one seam to west, emulators and serial ports), the sine model compiled once, and a
generated project."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "template_projects" / "zephyr"
# The helper modules (zephyr_boards, zephyr_io) are imported by name, as the server imports them.
sys.path.insert(0, str(TEMPLATE_DIR))

from microtvm_api.options import resolve  # noqa: E402
from microtvm_api.transport import SerialTransport  # noqa: E402
from zephyr_boards import PortInfo  # noqa: E402
from zephyr_io import Tools  # noqa: E402


def _load_server() -> Any:
    # A unique module name: other templates' tests import their own microtvm_api_server.py.
    spec = importlib.util.spec_from_file_location(
        "zephyr_microtvm_api_server", TEMPLATE_DIR / "microtvm_api_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


server_module = _load_server()


@dataclass
class Call:
    kind: str
    argv: list[str]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)


class RecordingTools(Tools):
    """Records each outside-world call with its exact arguments instead of performing it.

    Transports it returns are pyserial `loop://` ports (real objects echoing what is written), so the
    server's read/write paths run for real.
    """

    def __init__(self, ports: Sequence[PortInfo] = ()) -> None:
        self.calls: list[Call] = []
        self.ports = list(ports)
        self.opened: list[Any] = []

    def run(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> None:
        self.calls.append(Call("run", list(argv), cwd, dict(env)))

    def start_emulator(self, kind: str, argv: Sequence[str], log_path: Path) -> Any:
        self.calls.append(Call(f"emulator:{kind}", list(argv), log_path))
        return self._loop()

    def list_serial_ports(self) -> list[PortInfo]:
        self.calls.append(Call("list_serial_ports", []))
        return list(self.ports)

    def open_serial(self, device: str, baud: int) -> Any:
        self.calls.append(Call("open_serial", [device, str(baud)]))
        return self._loop()

    def _loop(self) -> SerialTransport:
        import serial

        transport = SerialTransport(serial.serial_for_url("loop://", timeout=0))
        self.opened.append(transport)
        return transport


def call(handler: Any, method: str, options: Mapping[str, Any] | None = None) -> Any:
    """Call a handler method the way the dispatcher does: options resolved against the declarations."""
    resolved = resolve(handler.project_options, method, options or {}, saved=handler.saved_option_values())
    return getattr(handler, method)(resolved)


@pytest.fixture(scope="session")
def sine_mlf(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    from tvmc_micro.compiler import compile_model

    out = tmp_path_factory.mktemp("zephyr_mlf") / "sine.tar"
    compile_model(models_dir / "hello_world_float.tflite", out)
    return out


def generate(mlf: Path, project_dir: Path, **options: Any) -> Any:
    """Generate a project from the template; returns the project's own handler (with RecordingTools)."""
    template = server_module.ZephyrHandler(tools=RecordingTools())
    resolved = resolve(template.project_options, "generate_project", options)
    template.generate_project(mlf, None, project_dir, resolved)
    return server_module.ZephyrHandler(tools=RecordingTools(), project_dir=project_dir)


@pytest.fixture
def fake_zephyr(tmp_path: Path) -> Path:
    """A folder that passes the 'is this a Zephyr tree' check (a VERSION file), for argv-only tests."""
    base = tmp_path / "zephyr"
    base.mkdir()
    (base / "VERSION").write_text("VERSION_MAJOR = 4\nVERSION_MINOR = 2\n")
    return base
