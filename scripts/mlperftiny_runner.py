#!/usr/bin/env python3
"""Drive an `mlperftiny` firmware the way the MLPerf Tiny runner (mlcommons/tiny benchmark/runner/) does:
commands terminated by `%` over the UART, answers read line by line up to `m-ready`.

    PYTHONPATH=client:project_api python3 scripts/mlperftiny_runner.py PROJECT_DIR -i in.npz
    python3 scripts/mlperftiny_runner.py PROJECT_DIR -i in.npz --port /dev/ttyACM0 --baud 115200

With only PROJECT_DIR (a flashed cortex_m project, or a zephyr project for an emulated board: QEMU or
native_sim) it boots the image in its emulator with the UART on a pty and talks to that pty through pyserial;
with --port it opens a real board's serial port. The steps: `name`,
`profile`, `db load N`, `db HEX` in chunks of 31 bytes (the runner's), `infer N W`, and the results. The
input comes from an .npz checked and converted as `tvmc run -i` does (the project's model/metadata.json),
or raw bytes (--raw FILE). Prints a JSON summary: the device's name, profile and model id, the dequantized
results (`m-results-[...]`), the outputs' raw bytes (`m-results-raw-[...]`, hex), the timed span in
microseconds (`m-lap-us-`) and every line the device sent; `-o out.npz` saves the outputs as arrays.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

CHUNK_BYTES = 31  # bytes per `db` command, as the runner sends them without a power manager
READY = "m-ready"


class ByteStream(Protocol):
    def read(self, n: int, timeout_sec: float | None) -> bytes: ...
    def write(self, data: bytes, timeout_sec: float | None) -> None: ...
    def close(self) -> Any: ...


class DeviceError(RuntimeError):
    """The device answered with an e- line, or not at all."""


class SerialStream:
    """A pyserial port as a ByteStream (a board's USB serial port)."""

    def __init__(self, device: str, baud: int) -> None:
        import serial

        self._port = serial.Serial(device, baudrate=baud, timeout=0)

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        self._port.timeout = timeout_sec
        return bytes(self._port.read(n))

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        self._port.write_timeout = timeout_sec
        self._port.write(data)

    def close(self) -> None:
        self._port.close()


class Dut:
    """The device under test: one command at a time, answers collected up to `m-ready`."""

    def __init__(self, stream: ByteStream, *, echo: bool = False) -> None:
        self.stream = stream
        self.echo = echo
        self.log: list[str] = []
        self._pending = b""

    def _line(self, deadline: float) -> str:
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceError(f"no complete line from the device in time (got {self._pending[-80:]!r})")
            self._pending += self.stream.read(4096, min(left, 0.5))
        raw, _, self._pending = self._pending.partition(b"\n")
        line = raw.decode("utf-8", errors="replace").strip("\r\x00 ")
        if self.echo:
            print(f"RX: {line}", file=sys.stderr)
        return line

    def drain(self, quiet_sec: float = 0.3) -> None:
        """Skip what the device printed before we listened (its boot lines, when they got through), then
        send one empty command and read its answer: a byte the device lost while it waited for the host
        to open the port ends there, not in the first real command."""
        while self.stream.read(4096, quiet_sec):
            pass
        self._pending = b""
        self.stream.write(b"%", 5.0)
        deadline = time.monotonic() + 2.0
        try:
            while self._line(deadline) != READY:
                pass
        except DeviceError:  # the '%' itself was lost: the device is waiting on an empty line anyway
            pass
        self._pending = b""

    def command(self, text: str, timeout_sec: float = 10.0) -> list[str]:
        """Send `text%`; the lines up to and including m-ready. DeviceError on an e- line."""
        if self.echo:
            print(f"TX: {text}%", file=sys.stderr)
        self.stream.write(text.encode() + b"%", timeout_sec)
        deadline = time.monotonic() + timeout_sec
        lines: list[str] = []
        while True:
            line = self._line(deadline)
            if not line:
                continue
            lines.append(line)
            self.log.append(line)
            if line == READY:
                break
        errors = [line for line in lines if line.startswith("e-")]
        if errors:
            raise DeviceError(f"{text!r}: {'; '.join(errors)}")
        return lines

    def load(self, data: bytes, attempts: int = 3) -> None:
        """`db load N` and the hex chunks, then `db print` to read the buffer back: text over a UART has no
        checksum, so a garbled chunk the device refused, or one that came out different, means the whole
        load is sent again (at most `attempts` times)."""
        problem = ""
        for _ in range(attempts):
            try:
                self.command(f"db load {len(data)}")
                for start in range(0, len(data), CHUNK_BYTES):
                    self.command("db " + data[start : start + CHUNK_BYTES].hex())
                echoed = _buffer_bytes(self.command("db print"))
            except DeviceError as err:
                problem = str(err)
                continue
            if echoed == data:
                return
            problem = f"db print shows {len(echoed)} bytes that differ from the {len(data)} sent"
        raise DeviceError(f"loading {len(data)} input bytes failed {attempts} times; last: {problem}")


def _buffer_bytes(lines: list[str]) -> bytes:
    """The bytes `db print` lists (`m-buffer-aa-bb-...` lines)."""
    out = bytearray()
    for line in lines:
        if line.startswith("m-buffer-"):
            out += bytes(int(h, 16) for h in line[len("m-buffer-") :].split("-") if h)
    return bytes(out)


@dataclass
class BenchmarkResult:
    name: str | None = None
    profile: str | None = None
    model: str | None = None
    tvmc_model: str | None = None
    tvmc_signature: str | None = None
    results: list[float] = field(default_factory=list)
    raw: bytes = b""
    elapsed_us: int | None = None
    lines: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "profile": self.profile,
            "model": self.model,
            "tvmc_model": self.tvmc_model,
            "tvmc_signature": self.tvmc_signature,
            "results": self.results,
            "raw_hex": self.raw.hex(),
            "elapsed_us": self.elapsed_us,
            "lines": self.lines,
        }


def _match(lines: Sequence[str], pattern: str) -> list[re.Match[str]]:
    return [m for m in (re.match(pattern, line) for line in lines) if m]


def run_benchmark(dut: Dut, data: bytes, iterations: int = 1, warmups: int = 0) -> BenchmarkResult:
    """name, profile, load `data`, infer; the parsed answers."""
    result = BenchmarkResult()
    for m in _match(dut.command("name"), r"^m-name-dut-\[([^]]+)\]$"):
        result.name = m.group(1)
    for m in _match(dut.command("profile"), r"^m-(profile|model|tvmc-model|tvmc-signature)-\[([^]]+)\]$"):
        setattr(result, m.group(1).replace("-", "_"), m.group(2))
    dut.load(data)
    lines = dut.command(f"infer {iterations} {warmups}", timeout_sec=60.0)
    for m in _match(lines, r"^m-results-\[([^]]*)\]$"):
        result.results = [float(x) for x in m.group(1).split(",") if x.strip()]
    for m in _match(lines, r"^m-results-raw-\[([0-9a-f]*)\]$"):
        result.raw = bytes.fromhex(m.group(1))
    laps = [int(m.group(1)) for m in _match(lines, r"^m-lap-us-(\d+)$")]
    if len(laps) >= 2:
        result.elapsed_us = laps[-1] - laps[-2]
    result.lines = list(dut.log)
    return result


def outputs_from_raw(raw: bytes, outputs_meta: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The raw result bytes as one numpy array per model output."""
    import numpy as np

    arrays: dict[str, Any] = {}
    offset = 0
    for t in outputs_meta:
        size = int(t["size_bytes"])
        arrays[t["name"]] = np.frombuffer(raw[offset : offset + size], np.dtype(t["dtype"]).newbyteorder("<"))
        arrays[t["name"]] = arrays[t["name"]].reshape(t["shape"])
        offset += size
    return arrays


class TransportStream:
    """A microtvm_api transport (an emulator's UART pty) as a ByteStream: a read that times out returns no
    bytes instead of raising."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        from microtvm_api.errors import IoTimeoutError

        try:
            return self._transport.read(n, timeout_sec)
        except IoTimeoutError:
            return b""

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        self._transport.write(data, timeout_sec)

    def close(self) -> None:
        self._transport.close()


def start_qemu(project_dir: Path) -> ByteStream:
    """Boot a flashed cortex_m project's image under QEMU with its UART on a pty opened by pyserial."""
    import yaml
    from microtvm_api.qemu import qemu_argv

    options = json.loads((project_dir / "project_options.json").read_text())
    boards = yaml.safe_load((project_dir / "boards.yaml").read_text())
    board = boards[options["board"]]
    flashed = project_dir / "build" / "flashed.json"
    if not flashed.is_file():
        raise SystemExit(f"error: {project_dir} has not been flashed: run tvmc micro build and flash first")
    image = project_dir / "build" / json.loads(flashed.read_text())["image"]
    argv = qemu_argv(board["qemu_machine"], image, semihosting=bool(board.get("semihosting")))
    from microtvm_api.qemu import QemuTransport

    return TransportStream(QemuTransport(argv, project_dir / "build" / "mlperftiny_qemu.log"))


def start_zephyr_emulator(project_dir: Path) -> ByteStream:
    """Boot a flashed zephyr project's image in its emulator (QEMU, or the native_sim executable) with the
    console UART on a pty, the way the project's own server boots it for `tvmc run`."""
    options = json.loads((project_dir / "project_options.json").read_text())
    record = project_dir / "flashed" / "flash.json"
    if not record.is_file():
        raise SystemExit(f"error: {project_dir} has not been flashed: run tvmc micro build and flash first")
    # The project carries the template's helpers (its server imports them the same way).
    sys.path.insert(0, str(project_dir))
    from zephyr_boards import load_boards
    from zephyr_io import Tools
    from zephyr_project import emulator_argv

    board = load_boards(project_dir / "boards.yaml").get(options["board"])
    if board.transport not in ("qemu", "native"):
        raise SystemExit(
            f"error: {board.name} is a real board, not an emulator: pass its serial port with --port DEV"
        )
    image = project_dir / "flashed" / json.loads(record.read_text())["image"]
    log = project_dir / "flashed" / "mlperftiny.log"
    return TransportStream(Tools().start_emulator(board.transport, emulator_argv(board, image), log))


def start_project(project_dir: Path) -> ByteStream:
    """Boot a flashed project of either template in its emulator: cortex_m (build/flashed.json) or zephyr
    (flashed/flash.json)."""
    saved = project_dir / "project_options.json"
    kind = json.loads(saved.read_text()).get("project_type", "host_driven") if saved.is_file() else None
    if kind is not None and kind != "mlperftiny":
        # Its firmware speaks the RPC protocol or prints once at boot: the commands would only time out.
        raise SystemExit(
            f"error: {project_dir} is a {kind} project, not mlperftiny: create one with "
            "--project-option project_type=mlperftiny --project-option mlperftiny_model=ID"
        )
    if (project_dir / "zephyr_boards.py").is_file():
        return start_zephyr_emulator(project_dir)
    if (project_dir / "boards.yaml").is_file():
        return start_qemu(project_dir)
    raise SystemExit(
        f"error: {project_dir} is not a cortex_m or zephyr project (no boards.yaml): give the project "
        "directory tvmc micro create-project made, or a board's serial port with --port DEV"
    )


def input_bytes(project_dir: Path, npz: str | None, raw: str | None) -> tuple[bytes, dict[str, Any]]:
    from microtvm_api.mlf_metadata import load_metadata
    from microtvm_api.npz_input import model_input_bytes

    model = load_metadata(project_dir / "model" / "metadata.json")["models"][0]
    if raw is not None:
        return Path(raw).read_bytes(), model
    if npz is None:
        raise SystemExit("error: give the input: -i in.npz or --raw input.bin")
    blobs, notes = model_input_bytes(model["inputs"], npz)
    for note in notes:
        print(note, file=sys.stderr)
    return b"".join(blobs), model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "project_dir",
        type=Path,
        help="a flashed mlperftiny project, cortex_m or zephyr (its model/metadata.json)",
    )
    parser.add_argument("-i", "--input", help=".npz of the model's inputs")
    parser.add_argument("--raw", help="a file of the input bytes as the device takes them")
    parser.add_argument("--port", help="the board's serial port (default: boot the project under QEMU)")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("-n", "--iterations", type=int, default=1)
    parser.add_argument("-w", "--warmups", type=int, default=0)
    parser.add_argument("-o", "--output", help="save the outputs (from m-results-raw) as an .npz")
    parser.add_argument("--echo", action="store_true", help="show every line sent and received")
    args = parser.parse_args(argv)
    data, model = input_bytes(args.project_dir, args.input, args.raw)
    stream = SerialStream(args.port, args.baud) if args.port else start_project(args.project_dir)
    try:
        dut = Dut(stream, echo=args.echo)
        dut.drain()
        result = run_benchmark(dut, data, args.iterations, args.warmups)
    except DeviceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        stream.close()
    if args.output:
        import numpy as np

        np.savez(args.output, **outputs_from_raw(result.raw, model["outputs"]))
    print(json.dumps(result.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
