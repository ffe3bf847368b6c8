"""A board farm on TVM's RPC tracker (DESIGN §12).

A worker (`tvmc micro rpc-worker`) is a `tvm.rpc.Server` registered at the tracker under a key (one key per
board kind, e.g. `cortex_m.mps2_an386`); in its server process it registers MEASURE_FUNC, which takes one
candidate in a JSON request (the model's bytes and name, the target, input shapes and one config per
task, which the worker compiles itself so that the workers' compiles run in parallel; or an MLF, base64),
measures it on the device the worker owns (tvmc_micro.tune.measure.measure_mlf) and answers the
measurement as JSON. `tvmc tune --rpc-tracker`
asks the tracker for a free worker per candidate set, as many at once as the key has workers; a set
whose worker fails or hangs is retried on another one (records are written by the client, so a lost
worker loses no record). The same worker also runs a whole project's MLF for `tvmc run --rpc-tracker`
(tvmc_micro.tune.farm_run).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvmc_micro.errors import TvmcError
from tvmc_micro.tune.measure import DeviceSpec, Measurement

MEASURE_FUNC = "tvmc_micro.tune.measure"
RETRIES = 2  # other workers tried after the first fails


def parse_address(text: str, what: str = "--rpc-tracker") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TvmcError(f"{what} {text!r} is not HOST:PORT", f"e.g. {what} 127.0.0.1:9190")
    return host, int(port)


def _register(spec_json: str, verbose: int, worker: str) -> None:
    """server_init_callback: runs in the RPC server's process; registers MEASURE_FUNC there."""
    import tempfile

    import tvm_ffi

    spec_data = json.loads(spec_json)
    spec = DeviceSpec(spec_data["platform"], spec_data["template_dir"], spec_data["options"])

    def measure(request_json: str) -> str:
        from tvmc_micro.tune.measure import measure_mlf

        req = json.loads(request_json)
        with tempfile.TemporaryDirectory(prefix="tvmc-worker-") as tmp:
            mlf = Path(tmp) / "candidate.tar"
            try:
                if "model" in req:
                    # The worker compiles the candidate itself (so N workers compile in parallel, not
                    # the client one at a time): the same compile_model call `tvmc tune` makes locally.
                    _compile_request(req, Path(tmp), mlf)
                else:
                    mlf.write_bytes(base64.b64decode(req["mlf"]))
                m = measure_mlf(
                    mlf,
                    spec,
                    [base64.b64decode(x) for x in req["inputs"]],
                    number=int(req["number"]),
                    repeat=int(req["repeat"]),
                    timeout_sec=float(req["timeout_sec"]),
                    workdir=Path(tmp),
                    verbose=verbose,
                )
            except TvmcError as err:
                m = Measurement(spec.platform, str(spec.options.get("board", "")), error=f"worker: {err}")
        m.worker = worker
        return json.dumps(m.as_json())

    tvm_ffi.register_global_func(MEASURE_FUNC, measure, override=True)
    # `tvmc run --rpc-tracker`: the same worker runs a project's MLF (tvmc_micro.tune.farm_run).
    from tvmc_micro.tune.farm_run import register_run

    register_run(spec, verbose, worker)


def _compile_request(req: Mapping[str, Any], tmp: Path, mlf: Path) -> None:
    from tvmc_micro.compiler import compile_model

    # The model keeps its file name: the format is told by the suffix and the MLF is named after the stem.
    name = Path(str(req["model_name"])).name
    if not name or name in (".", ".."):
        raise TvmcError(f"the request's model name {req['model_name']!r} is not a file name", "")
    model = tmp / "model" / name
    model.parent.mkdir()
    model.write_bytes(base64.b64decode(req["model"]))
    configs = {str(k): {str(n): int(v) for n, v in c.items()} for k, c in dict(req["configs"]).items()}
    shapes = {str(k): [int(d) for d in v] for k, v in dict(req.get("input_shapes") or {}).items()}
    compile_model(
        model,
        mlf,
        target=str(req["target"]),
        input_shapes=shapes,
        kernel_configs=configs,
        progress=lambda _m: None,
    )


def _hostname() -> str:
    import socket

    return socket.gethostname()


def serve(
    tracker: tuple[str, int],
    key: str,
    spec: DeviceSpec,
    *,
    host: str = "127.0.0.1",
    port: int = 9090,
    port_end: int = 9199,
    verbose: int = 0,
    ready: Any = None,
) -> None:
    """Register a worker at the tracker and serve until interrupted (Ctrl-C/SIGTERM stop it)."""
    try:
        from tvm import rpc
    except ImportError as err:  # tornado, cloudpickle, psutil: pip install tvmc-micro[tune]
        raise TvmcError(f"TVM's RPC needs {err.name}", "pip install 'tvmc-micro[tune]'") from None
    # Records name the worker that measured them: device, machine and this process (several workers
    # of one machine are told apart by the process id).
    worker = f"{spec.platform}:{spec.options.get('board', '')}@{_hostname()}/{os.getpid()}"
    server = rpc.Server(
        host,
        port,
        port_end,
        key=key,
        tracker_addr=tracker,
        silent=verbose < 1,
        server_init_callback=functools.partial(_register, json.dumps(spec.as_json()), verbose, worker),
    )
    if ready is not None:
        ready(server.port)
    try:
        while server.proc.is_alive() if hasattr(server.proc, "is_alive") else True:
            time.sleep(0.5)
    finally:
        server.terminate()


@dataclass
class FarmMeasurer:
    """Measures on the tracker's workers registered under `key`."""

    tracker: tuple[str, int]
    key: str
    number: int = 1
    repeat: int = 1
    timeout_sec: float = 120.0
    say: Callable[[str], None] | None = None  # told when a candidate set is retried on another worker
    _models: dict[str, str] = field(default_factory=dict, repr=False)  # model path -> base64 bytes

    def _client(self) -> Any:
        try:
            from tvm import rpc
        except ImportError as err:
            raise TvmcError(f"TVM's RPC needs {err.name}", "pip install 'tvmc-micro[tune]'") from None
        try:
            return rpc.connect_tracker(*self.tracker)
        except Exception as err:
            raise TvmcError(
                f"cannot reach the RPC tracker at {self.tracker[0]}:{self.tracker[1]}: {_first(err)}",
                "start one: python -m tvm.exec.rpc_tracker --host HOST --port PORT",
            ) from None

    def workers(self) -> int:
        """Servers registered under the key (free or busy)."""
        summary = self._client().summary()
        count = 0
        for info in summary.get("server_info", []):
            k = str(info.get("key", ""))
            if k == self.key or (k.startswith("server:") and k[len("server:") :] == self.key):
                count += 1
        return count

    def parallel(self) -> int:
        n = self.workers()
        if n == 0:
            raise TvmcError(
                f"no worker is registered at {self.tracker[0]}:{self.tracker[1]} under key {self.key!r}",
                f"start one: tvmc micro rpc-worker --tracker {self.tracker[0]}:{self.tracker[1]} "
                f"--key {self.key} PLATFORM",
            )
        return n

    def measure(self, mlf: Path, inputs: Sequence[bytes]) -> Measurement:
        """Measure an MLF compiled here."""
        return self._send({"mlf": base64.b64encode(mlf.read_bytes()).decode()}, inputs)

    def measure_configs(
        self,
        model: Path,
        target: str,
        input_shapes: Mapping[str, list[int]],
        configs: Mapping[str, Mapping[str, int]],
        inputs: Sequence[bytes],
    ) -> Measurement:
        """Have the worker compile `model` with one config per task (as `tvmc tune` would here) and
        measure it: the client only searches, so the workers' compiles run in parallel."""
        key = str(Path(model).absolute())
        data = self._models.get(key)
        if data is None:  # read once: every candidate of a run is compiled from the same bytes
            data = self._models[key] = base64.b64encode(Path(model).read_bytes()).decode()
        job = {
            "model": data,
            "model_name": Path(model).name,
            "target": target,
            "input_shapes": {k: list(v) for k, v in input_shapes.items()},
            "configs": {k: dict(c) for k, c in configs.items()},
        }
        return self._send(job, inputs)

    def _send(self, job: Mapping[str, Any], inputs: Sequence[bytes]) -> Measurement:
        request = json.dumps(
            {
                **job,
                "inputs": [base64.b64encode(x).decode() for x in inputs],
                "number": self.number,
                "repeat": self.repeat,
                "timeout_sec": self.timeout_sec,
            }
        )
        errors = []
        for _attempt in range(1 + RETRIES):
            try:
                remote = self._client().request(
                    self.key, priority=1, session_timeout=int(self.timeout_sec * 3 + 60)
                )
                reply = remote.get_function(MEASURE_FUNC)(request)
                return Measurement.from_json(_loads(reply))
            except TvmcError:
                raise
            except Exception as err:  # the worker died, hung past the session timeout, or was refused
                errors.append(_first(err))
                if self.say is not None and len(errors) <= RETRIES:
                    self.say(f"a worker of {self.key!r} failed ({errors[-1]}); retrying on another")
        raise TvmcError(
            f"the candidate set failed on {1 + RETRIES} workers of {self.key!r}: {'; '.join(errors)}",
            "check the workers' output (tvmc -v micro rpc-worker ...)",
        )


def _loads(text: Any) -> Mapping[str, Any]:
    data = json.loads(str(text))
    if not isinstance(data, dict):
        raise TvmcError("a worker's reply is not a JSON object", "check the worker's tvmc version")
    return data


def _first(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]
