"""Measuring a candidate firmware on a device through the Project API.

One measurement: an MLF (the model compiled with one candidate configuration per task) becomes a project
of the platform's template, is built, flashed and run once on fixed inputs (its outputs are returned for
the correctness check), then profiled per operator: `repeat` measurements of `number` profiled runs each;
an operator's count is its mean over the `number` runs of the best (smallest) measurement. Under QEMU
icount the count is an exact instruction count; on crt_host it is host time.

The result is plain JSON data (`Measurement.as_json`), so an RPC worker (tvmc_micro.tune.farm) can send it.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvmc_micro.errors import TvmcError


@dataclass
class Measurement:
    """What one firmware measured: per operator (in call order) its function and count."""

    platform: str
    board: str
    unit: str = ""  # instructions | cycles | seconds
    exact: bool = False
    op_functions: list[str] = field(default_factory=list)
    op_counts: list[float] = field(default_factory=list)
    outputs: list[bytes] = field(default_factory=list)
    error: str | None = None  # the candidate set failed to build or run: why
    seconds: float = 0.0  # wall time of the measurement (build, flash, run)
    worker: str = "local"

    def as_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "board": self.board,
            "unit": self.unit,
            "exact": self.exact,
            "op_functions": self.op_functions,
            "op_counts": self.op_counts,
            "outputs": [base64.b64encode(o).decode() for o in self.outputs],
            "error": self.error,
            "seconds": self.seconds,
            "worker": self.worker,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measurement:
        try:
            return cls(
                platform=str(data["platform"]),
                board=str(data["board"]),
                unit=str(data["unit"]),
                exact=bool(data["exact"]),
                op_functions=[str(f) for f in data["op_functions"]],
                op_counts=[float(c) for c in data["op_counts"]],
                outputs=[base64.b64decode(o) for o in data["outputs"]],
                error=None if data["error"] is None else str(data["error"]),
                seconds=float(data["seconds"]),
                worker=str(data.get("worker", "?")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise TvmcError(
                f"a measurement reply is malformed: {err}", "check the worker's tvmc version"
            ) from None

    def task_costs(self, function_task: Mapping[str, str]) -> dict[str, float]:
        """Per task key: the sum of its operators' counts in one inference."""
        costs: dict[str, float] = {}
        for fn, count in zip(self.op_functions, self.op_counts, strict=True):
            key = function_task.get(fn)
            if key is not None:
                costs[key] = costs.get(key, 0.0) + count
        return costs


@dataclass(frozen=True)
class DeviceSpec:
    """Where to measure: a platform's template (or --template-dir) and its project options."""

    platform: str
    template_dir: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "template_dir": self.template_dir, "options": dict(self.options)}


def measure_mlf(
    mlf: Path,
    spec: DeviceSpec,
    inputs: Sequence[bytes],
    *,
    number: int = 1,
    repeat: int = 1,
    timeout_sec: float = 120.0,
    workdir: Path | None = None,
    verbose: int = 0,
) -> Measurement:
    """Build, flash, run and profile the MLF on the device `spec` names. Failures of the candidate
    (build error, device fault, timeout) come back as `Measurement.error`; a bad `spec` raises."""
    from microtvm_api.client import ProjectAPIClient
    from microtvm_api.errors import ProjectAPIError
    from microtvm_api.options import load_options

    from tvmc_micro.device.errors import DeviceError
    from tvmc_micro.platforms import canonical_platform
    from tvmc_micro.project import check_options, template_dir_for

    platform = canonical_platform(spec.platform)
    template = template_dir_for(platform, spec.template_dir)
    started = time.monotonic()
    own_dir = workdir is None
    base = Path(tempfile.mkdtemp(prefix="tvmc-tune-")) if workdir is None else workdir
    project_dir = (base / "project").absolute()
    if project_dir.exists():
        shutil.rmtree(project_dir)
    sink = None if verbose < 1 else __import__("sys").stderr
    result = Measurement(platform=platform, board=str(spec.options.get("board", "")))
    try:
        with ProjectAPIClient.launch(template, stderr_sink=sink, debug=verbose >= 2) as client:
            info = client.server_info_query()
            check_options(info, dict(spec.options))
            client.generate_project(Path(mlf).absolute(), None, project_dir, dict(spec.options))
        result.board = str(load_options(project_dir).get("board") or result.board)
        try:
            with ProjectAPIClient.launch(project_dir, stderr_sink=sink, debug=verbose >= 2) as client:
                client.build(dict(spec.options), timeout_sec=timeout_sec)
                client.flash(dict(spec.options), timeout_sec=timeout_sec)
                _run_and_profile(
                    client, project_dir, platform, spec, inputs, number, repeat, timeout_sec, result
                )
        except (ProjectAPIError, DeviceError, TimeoutError) as err:
            result.error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:400]
    finally:
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


def _run_and_profile(
    client: Any,
    project_dir: Path,
    platform: str,
    spec: DeviceSpec,
    inputs: Sequence[bytes],
    number: int,
    repeat: int,
    timeout_sec: float,
    result: Measurement,
) -> None:
    from microtvm_api.client import ServerTransport

    from tvmc_micro.device import DeviceSession, check_signature
    from tvmc_micro.device.counter import describe_counter
    from tvmc_micro.project import project_model

    info = client.server_info_query()
    model = project_model(info, project_dir)
    transport = ServerTransport(client, dict(spec.options))
    timeouts = transport.timeouts
    session = DeviceSession(
        transport,
        reply_timeout_sec=float(timeouts.get("session_start_retry_timeout_sec", 1.0)),
        open_timeout_sec=float(timeouts.get("session_start_timeout_sec", 10.0)),
        run_timeout_sec=timeout_sec,
        transport_name=f"the {platform} transport of {project_dir}",
    )
    try:
        hello = session.open()
        check_signature(hello, model["signature"], model["name"], str(project_dir))
        device = session.info()
        counter = describe_counter(
            platform, project_dir, dict(spec.options), device.timer_hz, device.timer_kind
        )
        for index, data in enumerate(inputs):
            session.set_input(index, data)
        session.run()
        result.outputs = [session.get_output(i) for i in range(len(model["outputs"]))]
        best: list[float] | None = None
        for _ in range(max(1, repeat)):
            sums = [0.0] * len(device.op_names)
            for _ in range(max(1, number)):
                prof = session.profile_ops()
                sums = [s + t for s, t in zip(sums, prof.op_ticks, strict=True)]
            means = [s / max(1, number) for s in sums]
            if best is None or sum(means) < sum(best):
                best = means
        meta_ops = list(model.get("operators") or [])
        result.op_functions = [
            str(meta_ops[k]["name"]) if k < len(meta_ops) else name for k, name in enumerate(device.op_names)
        ]
        result.op_counts = [counter.count(t) for t in best or []]
        result.unit, result.exact = counter.unit, counter.exact
    finally:
        session.close()


@dataclass
class LocalMeasurer:
    """Measures on a device of this machine (a crt_host process, QEMU, a board on a serial port)."""

    spec: DeviceSpec
    number: int = 1
    repeat: int = 1
    timeout_sec: float = 120.0
    verbose: int = 0

    def parallel(self) -> int:
        return 1

    def measure(self, mlf: Path, inputs: Sequence[bytes]) -> Measurement:
        return measure_mlf(
            mlf,
            self.spec,
            inputs,
            number=self.number,
            repeat=self.repeat,
            timeout_sec=self.timeout_sec,
            verbose=self.verbose,
        )
