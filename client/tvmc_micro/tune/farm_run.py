"""`tvmc run --rpc-tracker HOST:PORT --rpc-key KEY PROJECT_DIR`: run a project on a farm device.

The same worker (`tvmc micro rpc-worker`) and the same hand-over as tuning (tvmc_micro.tune.farm): the
client sends the project's MLF (its `model.tar`) and project options; the worker generates a project of
its own platform from them, builds and flashes it on the device it owns, and runs the inputs through
`tvmc_micro.runner.run_on_device` exactly as a local `tvmc run` would (outputs of every sample, and timing
and the per-operator profile when asked). The reply is JSON; the client rebuilds a RunResult from it, so
printing, `-o`, `--json` and `--validate` are the local run's code.

Before anything is sent the worker is asked which device it serves (DEVICE_FUNC): a project of another
platform or board is refused, naming both.
"""

from __future__ import annotations

import base64
import json
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tvmc_micro.errors import TvmcError
from tvmc_micro.tune.measure import DeviceSpec

RUN_FUNC = "tvmc_micro.farm.run"
DEVICE_FUNC = "tvmc_micro.farm.device"
SESSION_TIMEOUT_SEC = 1800  # the worker ends a session (build, flash, run) that lasts longer than this


def _first(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------- worker side (in the RPC server process)


def default_board(spec: DeviceSpec) -> str:
    """The board the worker's projects get: its --project-option board, else the template's default."""
    if spec.options.get("board"):
        return str(spec.options["board"])
    from tvmc_micro.project import launched, template_dir_for

    with launched(template_dir_for(spec.platform, spec.template_dir)) as (_client, info):
        return _declared_default(info, "board")


def _declared_default(info: Mapping[str, Any], name: str) -> str:
    for o in info.get("project_options") or []:
        if o.get("name") == name and o.get("default") is not None:
            return str(o["default"])
    return ""


def register_run(spec: DeviceSpec, verbose: int, worker: str) -> None:
    """Register DEVICE_FUNC and RUN_FUNC in this (RPC server) process."""
    import tvm_ffi

    def device() -> str:
        return json.dumps({"platform": spec.platform, "board": default_board(spec), "worker": worker})

    def run(request_json: str) -> str:
        try:
            reply = serve_run(spec, json.loads(request_json), verbose)
        except Exception as err:  # any failure goes back as text: the client names the worker and exits 2
            from microtvm_api.errors import ProjectAPIError

            from tvmc_micro.device.errors import DeviceError

            known = isinstance(err, TvmcError | ProjectAPIError | DeviceError | TimeoutError)
            reply = {"error": str(err) if known else f"{type(err).__name__}: {err}"}
        reply["worker"] = worker
        return json.dumps(reply)

    tvm_ffi.register_global_func(DEVICE_FUNC, device, override=True)
    tvm_ffi.register_global_func(RUN_FUNC, run, override=True)


def serve_run(spec: DeviceSpec, req: Mapping[str, Any], verbose: int) -> dict[str, Any]:
    """Generate, build and flash the request's MLF on this worker's device, then run its samples."""
    from microtvm_api.client import ProjectAPIClient

    from tvmc_micro.project import check_options, template_dir_for
    from tvmc_micro.runner import run_on_device

    # The project's own options, then the worker's: the worker owns the device (board, serial port).
    options = {**{str(k): v for k, v in dict(req.get("options") or {}).items()}, **dict(spec.options)}
    timeout = float(req.get("timeout_sec", 600.0))
    sink = None if verbose < 1 else __import__("sys").stderr
    with tempfile.TemporaryDirectory(prefix="tvmc-farm-run-") as tmp:
        mlf = Path(tmp) / "model.tar"
        mlf.write_bytes(base64.b64decode(req["mlf"]))
        project_dir = Path(tmp) / "project"
        with ProjectAPIClient.launch(
            template_dir_for(spec.platform, spec.template_dir), stderr_sink=sink, debug=verbose >= 2
        ) as client:
            info = client.server_info_query()
            declared = {o.get("name") for o in info.get("project_options") or []}
            # Options this template does not declare (e.g. of a template --template-dir variant) are
            # dropped rather than refused: the device is the worker's, its options were checked at start.
            options = {k: v for k, v in options.items() if k in declared}
            check_options(info, options)
            client.generate_project(mlf.absolute(), None, project_dir.absolute(), options)
        with ProjectAPIClient.launch(project_dir, stderr_sink=sink, debug=verbose >= 2) as client:
            client.build(options, timeout_sec=timeout)
            client.flash(options, timeout_sec=timeout)
        samples_raw: list[list[str]] = req["samples"]

        def inputs_of(model: dict[str, Any]) -> list[list[np.ndarray]]:
            return [
                [
                    np.frombuffer(base64.b64decode(raw), dtype=np.dtype(t["dtype"])).reshape(t["shape"])
                    for raw, t in zip(sample, model["inputs"], strict=True)
                ]
                for sample in samples_raw
            ]

        result = run_on_device(
            project_dir,
            options,
            inputs_of,
            repeat=int(req.get("repeat", 1)),
            print_time=bool(req.get("print_time")),
            profile=bool(req.get("profile")),
            verbose=verbose,
        )
    d, t, p = result.device, result.timing, result.profile
    return {
        "error": None,
        "outputs": [
            [_b64(np.ascontiguousarray(o[x["name"]]).tobytes()) for x in result.model["outputs"]]
            for o in result.samples_outputs or [result.outputs]
        ],
        "device": None
        if d is None
        else {
            "model_name": d.model_name,
            "signature": d.signature,
            "protocol_version": list(d.protocol_version),
            "max_request": d.max_request,
            "max_reply": d.max_reply,
            "timer_hz": d.timer_hz,
            "op_names": list(d.op_names),
            "timer_kind": d.timer_kind,
        },
        "counter": None if result.counter is None else result.counter.as_json(),
        "timing": None
        if t is None
        else {k: getattr(t, k) for k in ("count", "total_ticks", "min_ticks", "max_ticks", "timer_hz")},
        "profile": None
        if p is None
        else {
            "op_names": list(p.op_names),
            "op_ticks": list(p.op_ticks),
            "total_ticks": p.total_ticks,
            "timer_hz": p.timer_hz,
        },
    }


# ---------------------------------------------------------------- client side


def probe_tracker(tracker: tuple[str, int], timeout_sec: float = 5.0) -> None:
    """Fail fast and clearly when nothing answers at the tracker's address (TVM's own client retries a
    refused connection for a minute)."""
    try:
        with socket.create_connection(tracker, timeout=timeout_sec):
            pass
    except OSError as err:
        reason = err.strerror or _first(err)
        raise TvmcError(
            f"cannot reach the RPC tracker at {tracker[0]}:{tracker[1]}: {reason}",
            "check --rpc-tracker HOST:PORT, or start one there: python -m tvm.exec.rpc_tracker "
            f"--host {tracker[0]} --port {tracker[1]}",
        ) from None


def tracker_keys(summary: Mapping[str, Any]) -> dict[str, int]:
    """Keys with registered workers, and how many each (the tracker reports `server:KEY`)."""
    keys: dict[str, int] = {}
    for info in summary.get("server_info", []):
        k = str(info.get("key", ""))
        k = k[len("server:") :] if k.startswith("server:") else k
        keys[k] = keys.get(k, 0) + 1
    return keys


def _connect(tracker: tuple[str, int]) -> Any:
    try:
        from tvm import rpc
    except ImportError as err:  # tornado, cloudpickle, psutil: pip install tvmc-micro[tune]
        raise TvmcError(f"TVM's RPC needs {err.name}", "pip install 'tvmc-micro[tune]'") from None
    probe_tracker(tracker)
    try:
        return rpc.connect_tracker(*tracker)
    except Exception as err:
        raise TvmcError(
            f"{tracker[0]}:{tracker[1]} does not answer as an RPC tracker: {_first(err)}",
            "check --rpc-tracker: it names the tracker (python -m tvm.exec.rpc_tracker), not a worker",
        ) from None


def request_worker(tracker: tuple[str, int], key: str, wait_sec: float, say: Callable[[str], None]) -> Any:
    """A session with a free worker of `key`, waiting at most `wait_sec` for one to register and be free."""
    where = f"{tracker[0]}:{tracker[1]}"
    deadline = time.monotonic() + wait_sec
    client = _connect(tracker)
    keys = tracker_keys(client.summary())
    if key not in keys:
        say(f"no worker of {key!r} at tracker {where} yet; waiting up to {wait_sec:g} s")
        while key not in keys and time.monotonic() < deadline:
            time.sleep(0.5)
            keys = tracker_keys(client.summary())
        if key not in keys:
            have = ", ".join(f"{k!r} ({n})" for k, n in sorted(keys.items())) or "none"
            raise TvmcError(
                f"no worker is registered at tracker {where} under key {key!r} "
                f"(waited {wait_sec:g} s); the tracker has workers for: {have}",
                f"start one: tvmc micro rpc-worker PLATFORM --tracker {where} --key {key} "
                "--project-option board=..., or pass one of the keys above",
            )
    # A registered worker may be busy: the tracker queues the request; the socket timeout bounds the wait.
    client._sock.settimeout(max(1.0, deadline - time.monotonic()))
    try:
        return client.request(key, priority=1, session_timeout=SESSION_TIMEOUT_SEC, max_retry=1)
    except Exception as err:
        if "timed out" in str(err):
            raise TvmcError(
                f"the {keys.get(key, 0)} worker(s) of {key!r} at tracker {where} stayed busy for "
                f"{wait_sec:g} s",
                "wait for them, or raise --rpc-timeout",
            ) from None
        raise TvmcError(
            f"the tracker at {where} gave no session with a worker of {key!r}: {_first(err)}",
            "check the workers (python -m tvm.exec.query_rpc_tracker --host HOST --port PORT)",
        ) from None


def _device_text(platform: str, board: str) -> str:
    return f"a {platform!r}" + (f" board {board!r}" if board else "")


def project_device(info: Mapping[str, Any], project_dir: Path) -> tuple[str, str]:
    """The platform and board a project was generated for."""
    from microtvm_api.options import load_options

    board = load_options(project_dir).get("board") or _declared_default(info, "board")
    return str(info.get("platform_name", "")), str(board or "")


def run_on_farm(
    project_dir: Path,
    tracker: tuple[str, int],
    key: str,
    run_options: Mapping[str, str],
    input_source: Callable[[dict[str, Any]], Sequence[Sequence[np.ndarray]] | Sequence[np.ndarray]],
    *,
    repeat: int = 1,
    print_time: bool = False,
    profile: bool = False,
    wait_sec: float = 30.0,
    verbose: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[Any, str]:
    """Run the project's model on a worker of `key`; the RunResult (as a local run returns) and the
    worker's name."""
    from microtvm_api.options import load_options

    from tvmc_micro.device import DeviceInfo, OpProfile, TimingResult
    from tvmc_micro.device.counter import Counter
    from tvmc_micro.project import check_is_project, launched, project_model
    from tvmc_micro.runner import RunResult

    say = progress or (lambda _msg: None)
    with launched(project_dir, verbose=verbose) as (_client, info):
        check_is_project(info, project_dir, None)
        model = project_model(info, project_dir)
        platform, board = project_device(info, project_dir)
        mlf_path = Path(info["model_library_format_path"])
    if not mlf_path.is_absolute():
        mlf_path = project_dir / mlf_path
    given = input_source(model)  # bad inputs fail before a worker is taken
    batch: list[list[np.ndarray]] = (
        [list(s) for s in given] if given and not isinstance(given[0], np.ndarray) else [list(given)]  # type: ignore[arg-type]
    )
    where = f"{tracker[0]}:{tracker[1]}"
    say(f"asking the tracker at {where} for a worker of {key!r}")
    remote = request_worker(tracker, key, wait_sec, say)
    try:
        served = json.loads(str(remote.get_function(DEVICE_FUNC)()))
    except Exception as err:
        raise TvmcError(
            f"the worker of {key!r} did not say which device it serves: {_first(err)}",
            "is it a tvmc micro rpc-worker of this tvmc version?",
        ) from None
    if (served.get("platform"), served.get("board") or "") != (platform, board):
        raise TvmcError(
            f"{project_dir} is {_device_text(platform, board)} project, but the workers of key {key!r} "
            f"serve {_device_text(str(served.get('platform')), str(served.get('board') or ''))}",
            "pass the --rpc-key of a worker for this project's board, or create the project for "
            f"{served.get('platform')} --project-option board={served.get('board')}",
        )
    worker = str(served.get("worker", "?"))
    options = {**load_options(project_dir), **dict(run_options)}
    options.pop("board", None)  # the worker's own
    request = json.dumps(
        {
            "mlf": _b64(mlf_path.read_bytes()),
            "options": {k: v for k, v in options.items() if isinstance(v, str | int | float | bool)},
            "samples": [[_b64(np.ascontiguousarray(a).tobytes()) for a in s] for s in batch],
            "repeat": repeat,
            "print_time": print_time,
            "profile": profile,
            "timeout_sec": 600.0,
        }
    )
    say(f"worker {worker} builds, flashes and runs {mlf_path.name} ({len(request) // 1024} KB sent)")
    try:
        reply = json.loads(str(remote.get_function(RUN_FUNC)(request)))
    except Exception as err:  # the connection dropped: the worker died or its session timed out
        raise TvmcError(
            f"worker {worker} of {key!r} stopped while running {project_dir}: the connection to it closed "
            f"mid-run ({_first(err)})",
            "check that worker's output (tvmc -v micro rpc-worker ...), then run again (another worker of "
            "the key may take it)",
        ) from None
    if not isinstance(reply, dict):
        raise TvmcError(f"worker {worker} answered junk", "check the worker's tvmc version")
    if reply.get("error"):
        raise TvmcError(
            f"on worker {worker} of {key!r}: {reply['error']}", "the worker built and ran this project's MLF"
        )
    outputs_meta = model["outputs"]
    samples_out = [
        {
            t["name"]: np.frombuffer(base64.b64decode(raw), dtype=np.dtype(t["dtype"]))
            .reshape(t["shape"])
            .copy()
            for raw, t in zip(sample, outputs_meta, strict=True)
        }
        for sample in reply["outputs"]
    ]
    dev = reply.get("device")
    device = (
        None
        if dev is None
        else DeviceInfo(
            dev["model_name"],
            dev["signature"],
            (int(dev["protocol_version"][0]), int(dev["protocol_version"][1])),
            int(dev["max_request"]),
            int(dev["max_reply"]),
            int(dev["timer_hz"]),
            (),
            (),
            tuple(dev["op_names"]),
            int(dev["timer_kind"]),
        )
    )
    c = reply.get("counter")
    counter = (
        None
        if c is None
        else Counter(
            c["unit"], float(c["per_tick"]), bool(c["exact"]), c["basis"], int(c["timer_hz"]), c["clock_hz"]
        )
    )
    t = reply.get("timing")
    timing = None if t is None else TimingResult(**{k: int(v) for k, v in t.items()})
    p = reply.get("profile")
    op_profile = (
        None
        if p is None
        else OpProfile(
            tuple(p["op_names"]),
            tuple(int(x) for x in p["op_ticks"]),
            int(p["total_ticks"]),
            int(p["timer_hz"]),
        )
    )
    result = RunResult(
        model, samples_out[0], timing, op_profile, device, batch[0], counter, samples_out, batch
    )
    return result, worker
