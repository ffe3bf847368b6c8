"""What the `project_type` option means to a template, shared by `cortex_m` and `zephyr` (stdlib only).

- `host_driven` (default): the firmware serves the model over the device RPC protocol (`tvmc run`).
- `standalone`: the firmware runs the model once at boot on the input given at create-project time
  (`--project-option input=in.npz`) and prints the outputs and the run's timer ticks over the UART in the
  line format of `parse_standalone_output` (docs/project-types.md).
- `mlperftiny`: the firmware speaks the MLPerf Tiny / EEMBC EnergyRunner device API over the UART
  (`--project-option mlperftiny_model=kws01|vww01|ad01|ic01|strww01`).

Every type serves the same MLF: the same model glue, signature and metadata; only the firmware's main
loop differs. Templates declare `project_type_options()`, call `check_project_type_options` and
`write_app_files` from generate_project, compile `app_sources(...)` and, for standalone, run the image with
`run_until_marker` and show `parse_standalone_output`'s result.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microtvm_api import lifeline
from microtvm_api.errors import CommandFailedError, InvalidOptionError, ToolNotFoundError
from microtvm_api.npz_input import model_input_bytes
from microtvm_api.options import ProjectOption

HOST_DRIVEN, STANDALONE, MLPERFTINY = "host_driven", "standalone", "mlperftiny"
PROJECT_TYPES = (HOST_DRIVEN, STANDALONE, MLPERFTINY)
# The model ids the MLPerf Tiny runner knows (benchmark/api/internally_implemented.h).
MLPERF_MODEL_IDS = ("kws01", "vww01", "ad01", "ic01", "strww01")
# The portable C of the standalone and mlperftiny firmware (both templates compile these).
APP_DIR_NAME = "apps"
APP_SOURCES = {
    HOST_DRIVEN: (),
    STANDALONE: ("tvmc_app_text.c", "tvmc_standalone.c"),
    MLPERFTINY: ("tvmc_app_text.c", "tvmc_mlperftiny.c"),
}
APP_FILES = ("tvmc_app.h", "tvmc_app_text.c", "tvmc_standalone.c", "tvmc_mlperftiny.c")
CONFIG_HEADER = "tvmc_app_config.h"
INPUT_SOURCE = "standalone_input.c"
STANDALONE_END = "tvmc-standalone-end"
STANDALONE_OUTPUT_JSON = "standalone_output.json"


def project_type_options(generate: str = "generate_project") -> tuple[ProjectOption, ...]:
    """The three options, declared once for every template that offers project types."""
    methods = (generate,)
    return (
        ProjectOption("project_type", "str", HOST_DRIVEN,
                      "host_driven: served to `tvmc run`; standalone: runs once at boot on `input` and "
                      "prints the outputs; mlperftiny: the MLPerf Tiny / EnergyRunner UART API",
                      choices=PROJECT_TYPES, optional=methods),
        ProjectOption("input", "str", None,
                      "project_type standalone: the .npz of model inputs built into the firmware "
                      "(checked and converted as `tvmc run -i` does); a relative path is made absolute by "
                      "tvmc against its working directory", optional=methods, path=True),
        ProjectOption("mlperftiny_model", "str", None,
                      "project_type mlperftiny: the benchmark's model id the firmware reports",
                      choices=MLPERF_MODEL_IDS, optional=methods),
    )  # fmt: skip


def _option_error(option: str, message: str, hint: str) -> InvalidOptionError:
    return InvalidOptionError(message, hint, data={"option": option})


def check_project_type_options(options: Mapping[str, Any]) -> str:
    """The project type, after refusing option combinations that cannot mean what the user wants."""
    kind = str(options.get("project_type") or HOST_DRIVEN)
    if kind == STANDALONE and not options.get("input"):
        raise _option_error(
            "input",
            "project_type standalone needs the input to run the model on",
            "pass --project-option input=in.npz (numpy.savez(path, **{input_name: array}))",
        )
    if kind != STANDALONE and options.get("input"):
        raise _option_error(
            "input",
            f"project option 'input' applies to project_type standalone, not {kind}",
            "drop it, or add --project-option project_type=standalone",
        )
    if kind == MLPERFTINY and not options.get("mlperftiny_model"):
        raise _option_error(
            "mlperftiny_model",
            "project_type mlperftiny needs the benchmark's model id",
            f"pass --project-option mlperftiny_model=<{'|'.join(MLPERF_MODEL_IDS)}>",
        )
    if kind != MLPERFTINY and options.get("mlperftiny_model"):
        raise _option_error(
            "mlperftiny_model",
            f"project option 'mlperftiny_model' applies to project_type mlperftiny, not {kind}",
            "drop it, or add --project-option project_type=mlperftiny",
        )
    return kind


def _c_float(value: float) -> str:
    """A float32 as an exact C hex literal (the value the host's numpy.float32(value) has)."""
    f32 = struct.unpack("<f", struct.pack("<f", value))[0]
    return f"{f32.hex()}f" if math.isfinite(f32) else "0.0f"


def app_config_header(model: Mapping[str, Any], kind: str, model_id: str | None) -> str:
    """tvmc_app_config.h: the input size, the model id and the outputs' quantisation for the apps."""
    input_bytes = sum(int(t["size_bytes"]) for t in model["inputs"])
    scales, zero_points = [], []
    for t in model["outputs"]:
        quant = t.get("quantization")
        scales.append(_c_float(float(quant["scale"])) if quant else "0.0f")  # 0: print the value as it is
        zero_points.append(str(int(quant["zero_point"])) if quant else "0")
    return "\n".join([
        f"/* Generated by microtvm_api.project_types for project_type {kind} (model {model['name']}). */",
        "#ifndef TVMC_APP_CONFIG_H_",
        "#define TVMC_APP_CONFIG_H_",
        f"#define TVMC_APP_INPUT_BYTES {input_bytes}u",
        f'#define TVMC_MLPERF_MODEL_ID "{model_id or "none"}"',
        f"#define TVMC_OUTPUT_SCALES {{{', '.join(scales) or '0.0f'}}}",
        f"#define TVMC_OUTPUT_ZERO_POINTS {{{', '.join(zero_points) or '0'}}}",
        "#endif",
        "",
    ])  # fmt: skip


def standalone_input_c(model: Mapping[str, Any], blobs: Sequence[bytes], source: str) -> str:
    """standalone_input.c: the input bytes as const arrays (flash) and the table tvmc_standalone.c reads."""
    lines = [
        f"/* Generated by microtvm_api.project_types from {Path(source).name}: the model's inputs. */",
        "#include <stdint.h>",
        "",
        '#include "tvmc_app.h"',
        "",
    ]
    for i, (t, blob) in enumerate(zip(model["inputs"], blobs, strict=True)):
        lines.append(f"/* input {i}: {t.get('c_name', t['name'])} {t['dtype']}{list(t['shape'])} */")
        lines.append(f"static const uint8_t input_{i}[{max(len(blob), 1)}] __attribute__((aligned(16))) = {{")
        for start in range(0, len(blob), 16):
            lines.append("    " + ", ".join(f"0x{b:02x}" for b in blob[start : start + 16]) + ",")
        lines.append("};")
    entries = [f"    {{input_{i}, {len(blob)}u}}," for i, blob in enumerate(blobs)]
    lines += [
        f"const tvmc_app_blob_t tvmc_standalone_inputs[{max(len(blobs), 1)}] = {{",
        *(entries or ["    {0, 0u},"]),
        "};",
        f"const uint32_t tvmc_standalone_num_inputs = {len(blobs)}u;",
        "",
    ]
    return "\n".join(lines)  # fmt: skip


def write_app_files(out_dir: Path, model: Mapping[str, Any], options: Mapping[str, Any]) -> list[str]:
    """Writes tvmc_app_config.h (and standalone_input.c) into `out_dir` for a standalone or mlperftiny
    project; nothing for host_driven. Returns notes for the user (inputs that were quantized). `input` is
    an absolute path: a path option (the client makes it absolute; the options check refuses a relative
    one)."""
    kind = check_project_type_options(options)
    if kind == HOST_DRIVEN:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    if kind == STANDALONE:
        path = Path(str(options["input"]))
        blobs, notes = model_input_bytes(model["inputs"], path)
        (out_dir / INPUT_SOURCE).write_text(standalone_input_c(model, blobs, str(path)), encoding="utf-8")
    (out_dir / CONFIG_HEADER).write_text(
        app_config_header(model, kind, options.get("mlperftiny_model")), encoding="utf-8"
    )
    return notes


# ---- the standalone output --------------------------------------------------------------------------


@dataclass
class StandaloneOutput:
    index: int
    name: str
    dtype: str
    shape: list[int]
    values: list[Any]  # ints, or floats decoded from their bits


@dataclass
class StandaloneReport:
    """What a standalone firmware printed (docs/project-types.md, "Standalone output")."""

    model: str = ""
    signature: str = ""
    status: int | None = None  # None: the end line never came
    outputs: list[StandaloneOutput] = field(default_factory=list)
    ticks: int | None = None
    timer_hz: int | None = None
    lines: list[str] = field(default_factory=list)  # the tvmc-* lines as printed

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "signature": self.signature,
            "status": self.status,
            "ticks": self.ticks,
            "timer_hz": self.timer_hz,
            "outputs": [
                {"index": o.index, "name": o.name, "dtype": o.dtype, "shape": o.shape, "values": o.values}
                for o in self.outputs
            ],
        }


_FLOAT_FORMATS = {"float16": "<e", "float32": "<f", "float64": "<d"}


def _decode_value(dtype: str, text: str) -> Any:
    if dtype in _FLOAT_FORMATS:
        bits = int(text, 16)
        size = struct.calcsize(_FLOAT_FORMATS[dtype])
        return struct.unpack(_FLOAT_FORMATS[dtype], bits.to_bytes(size, "little"))[0]
    if dtype == "bfloat16":
        return struct.unpack("<f", (int(text, 16) << 16).to_bytes(4, "little"))[0]
    return int(text, 10)


def _fields(rest: str) -> dict[str, str]:
    """`key=value` words; a `name=` field is the rest of the line (tensor names may hold spaces)."""
    head, sep, name = rest.partition(" name=")
    out = dict(word.split("=", 1) for word in head.split() if "=" in word)
    if sep:
        out["name"] = name
    return out


def parse_standalone_output(text: str) -> StandaloneReport:
    """The report in a standalone firmware's UART text (other lines, e.g. boot noise, are skipped)."""
    report = StandaloneReport()
    for raw in text.splitlines():
        line = raw.strip("\r\x00 ")
        tag, _, rest = line.partition(" ")
        if not tag.startswith("tvmc-"):
            continue
        report.lines.append(line)
        f = _fields(rest)
        try:
            if tag == "tvmc-standalone-begin":
                report = StandaloneReport(
                    model=f.get("model", ""), signature=f.get("signature", ""), lines=[line]
                )
            elif tag == "tvmc-output":
                dtype = f["dtype"]
                shape = [int(d) for d in f["shape"].split("x")] if f.get("shape") else []
                values = [_decode_value(dtype, v) for v in f["values"].split(",")] if f.get("values") else []
                report.outputs.append(
                    StandaloneOutput(int(f["index"]), f.get("name", ""), dtype, shape, values)
                )
            elif tag == "tvmc-time":
                report.ticks, report.timer_hz = int(f["ticks"]), int(f["timer_hz"])
            elif tag == STANDALONE_END:
                report.status = int(f["status"])
        except (KeyError, ValueError, struct.error) as err:
            raise CommandFailedError(
                f"the firmware printed a malformed line {line[:120]!r} ({err})",
                "rebuild and flash the project; the UART may have dropped bytes",
            ) from None
    return report


def format_report(report: StandaloneReport, count_text: str | None = None) -> str:
    """The report for people: one line per output, then the time."""
    rows = [
        f"standalone run of model {report.model!r} (signature {report.signature}): status {report.status}"
    ]
    for o in report.outputs:
        shown = ", ".join(repr(v) if isinstance(v, float) else str(v) for v in o.values[:64])
        more = f", ... ({len(o.values)} values)" if len(o.values) > 64 else ""
        rows.append(f"  output {o.index} {o.name!r} {o.dtype}{o.shape}: [{shown}{more}]")
    if report.ticks is not None and report.timer_hz:
        rows.append(
            f"  run: {report.ticks:,} timer ticks at {report.timer_hz:,} Hz"
            + (f" = {count_text}" if count_text else "")
        )
    return "\n".join(rows)


def save_report(report: StandaloneReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")


# ---- running an image until it has said everything --------------------------------------------------


@dataclass
class CapturedRun:
    text: str  # what the firmware printed on its UART (the process's stdout)
    exit_status: int | None  # None: still running when the marker came (then killed)


def run_until_marker(
    argv: Sequence[str],
    marker: str,
    *,
    timeout_sec: float,
    log_path: Path,
    explain_exit: Callable[[int], tuple[str, str] | None] | None = None,
) -> CapturedRun:
    """Runs an emulator whose UART is its stdout (QEMU `-serial stdio`, native_sim `-uart_stdinout`) until
    a whole line starting with `marker` has arrived, then stops it. QEMU's own messages go to `log_path`.

    An emulator that exits first, or prints no marker within `timeout_sec`, is a CommandFailedError
    quoting what the firmware printed (and `explain_exit`'s reading of the exit status)."""
    import shlex
    import shutil

    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        raise ToolNotFoundError(
            f"{argv[0]} not found", "install it (qemu-system-arm: apt-get install qemu-system-arm)"
        )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        log.write(f"$ {shlex.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            preexec_fn=lifeline.die_with_parent(signal.SIGKILL),
        )
    assert proc.stdout is not None
    token = lifeline.add_cleanup(proc.kill)
    data = bytearray()
    deadline = time.monotonic() + timeout_sec
    needle = marker.encode()
    status: int | None = None
    try:
        while True:
            start = data.rfind(needle)
            if start >= 0 and b"\n" in data[start:]:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommandFailedError(
                    f"the firmware printed no {marker!r} line within {timeout_sec:.0f} s; it printed:\n"
                    f"{_tail(data)}",
                    f"see {log_path} for the emulator's messages",
                )
            ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                status = proc.wait()
                what, hint = (explain_exit(status) if explain_exit else None) or (
                    f"the emulator exited with status {status}",
                    f"see {log_path}",
                )
                raise CommandFailedError(
                    f"{what} before the firmware printed {marker!r}; it printed:\n{_tail(data)}",
                    hint,
                    data={"exit_status": status},
                )
            data += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        lifeline.remove_cleanup(token)
    return CapturedRun(data.decode("utf-8", errors="replace"), status)


def _tail(data: bytes | bytearray, lines: int = 15) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return "\n".join(text.splitlines()[-lines:]) if text else "(nothing)"
