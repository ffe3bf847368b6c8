"""The tuning loop: propose one candidate per task, build them into one firmware, measure, record.

Search, per task, over its (small) knob space: the hand-set config first (the baseline, and the reference
for outputs), then a few configs drawn at random (seeded), then greedy: a random unmeasured neighbour
(one knob moved one step) of the best so far, or a random unmeasured config when the best has none left.
Every candidate keeps each output's summation order (tvmc_micro.compiler.schedule.tuning_space), and a
firmware whose outputs differ from the baseline's counts for none of its candidates.
"""

from __future__ import annotations

import itertools
import random
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from tvmc_micro.errors import TvmcError
from tvmc_micro.tune.measure import Measurement
from tvmc_micro.tune.records import Record, append_records, config_id
from tvmc_micro.tune.tasks import ModelTasks, Task, target_json

RANDOM_FIRST = 2  # random proposals per task before the greedy steps
FLOAT_TOLERANCE = 1e-5  # |candidate - baseline| relative to the largest |baseline| value


def space_size(space: Mapping[str, Sequence[int]]) -> int:
    return len(all_configs(space))


def all_configs(space: Mapping[str, Sequence[int]]) -> list[dict[str, int]]:
    from tvmc_micro.compiler.schedule import config_valid

    if not space:
        return []
    names = sorted(space)
    out = []
    for values in itertools.product(*(space[n] for n in names)):
        config = dict(zip(names, values, strict=True))
        if config_valid(config, space):
            out.append(config)
    return out


def neighbours(config: Mapping[str, int], space: Mapping[str, Sequence[int]]) -> list[dict[str, int]]:
    from tvmc_micro.compiler.schedule import config_valid

    out = []
    for name, values in space.items():
        i = list(values).index(config[name]) if config.get(name) in values else -1
        for j in (i - 1, i + 1):
            if i >= 0 and 0 <= j < len(values):
                candidate = {**config, name: values[j]}
                if config_valid(candidate, space):
                    out.append(candidate)
    return out


@dataclass
class TaskState:
    task: Task
    measured: dict[tuple[tuple[str, int], ...], float | None] = field(default_factory=dict)
    trials: int = 0  # candidates measured by this run (not counting the baseline)
    since_best: int = 0
    baseline: float | None = None
    pending: set[tuple[tuple[str, int], ...]] = field(default_factory=set)

    def best(self) -> tuple[dict[str, int], float] | None:
        valid = [(k, c) for k, c in self.measured.items() if c is not None]
        if not valid:
            return None
        k, c = min(valid, key=lambda kc: kc[1])
        return dict(k), c

    def propose(self, rng: random.Random) -> dict[str, int] | None:
        seen = set(self.measured) | self.pending
        unseen = [c for c in all_configs(self.task.space) if config_id(c) not in seen]
        if not unseen:
            return None
        best = self.best()
        if best is not None and self.trials >= RANDOM_FIRST:
            near = [c for c in neighbours(best[0], self.task.space) if config_id(c) not in seen]
            if near:
                return rng.choice(near)
        return rng.choice(unseen)


class Measurer(Protocol):
    """Measures a compiled candidate firmware (locally or on a farm). A measurer that also has
    `measure_configs(model, target, input_shapes, configs, inputs)` (the farm's) is handed the candidate's
    configs instead, and compiles it where it measures."""

    def parallel(self) -> int: ...

    def measure(self, mlf: Path, inputs: Sequence[bytes]) -> Measurement: ...


@dataclass
class TuneSettings:
    model: Path
    target: str
    output: Path
    trials: int
    early_stopping: int | None
    seed: int = 0
    input_shapes: Mapping[str, list[int]] = field(default_factory=dict)


@dataclass
class TuneSummary:
    rounds: int
    records_written: int
    baseline_total: float
    unit: str
    best: dict[str, tuple[dict[str, int], float, float | None]]  # task -> (config, cost, baseline)


def tune(
    settings: TuneSettings,
    mt: ModelTasks,
    measurer: Measurer,
    prior: Sequence[Record],
    say: Callable[[str], None],
) -> TuneSummary:
    from tvmc_micro import __version__ as tool_version

    rng = random.Random(settings.seed)
    states = {t.key: TaskState(t) for t in mt.tasks if t.space}
    if not states:
        raise TvmcError(
            f"{settings.model.name} has no kernel with knobs to tune (tasks: {len(mt.tasks)})",
            "tvmc tune MODEL --list-tasks --target T shows the knobs per kernel; see docs/tuning.md",
        )
    for r in prior:
        if r.task in states:
            states[r.task].measured[r.config_id()] = r.cost if r.valid else None
    tgt = target_json(mt.target)
    parallel = max(1, measurer.parallel())  # a farm without workers fails here, before any compile
    workdir = Path(tempfile.mkdtemp(prefix="tvmc-tune-mlf-"))
    started = time.monotonic()
    # Round 0: the hand-set kernels, the baseline and the reference outputs. On a farm the first candidate
    # sets are compiled and sent while the baseline is measured (their results wait for it); the hand-set
    # configs are held pending meanwhile so no candidate repeats one.
    say("measuring the hand-set kernels (baseline)")
    baseline_mlf = _compile(settings, {}, workdir / "baseline.tar")
    inputs = _inputs(baseline_mlf, settings.seed)
    for st in states.values():
        st.pending.add(config_id(st.task.default))
    rounds = 0
    submitted = 0
    pool = ThreadPoolExecutor(max_workers=parallel)
    try:
        base_future = pool.submit(measurer.measure, baseline_mlf, inputs)
        in_flight: dict[Future[Measurement], dict[str, dict[str, int]]] = {}

        def fill(slots: int) -> None:
            nonlocal submitted
            while len(in_flight) < slots:
                proposal = _propose(states, settings, rng)
                if not proposal:
                    break
                remote = getattr(measurer, "measure_configs", None)
                if remote is not None:  # a farm: the worker compiles the candidate (in parallel)
                    fut = pool.submit(
                        remote, settings.model, settings.target, dict(settings.input_shapes), proposal, inputs
                    )
                else:
                    mlf = _compile(settings, proposal, workdir / f"candidate{submitted}.tar")
                    fut = pool.submit(measurer.measure, mlf, inputs)
                submitted += 1
                in_flight[fut] = proposal

        fill(parallel - 1)
        base = base_future.result()
        if base.error is not None:
            for fut in in_flight:
                fut.cancel()
            raise TvmcError(
                f"the untuned firmware failed on the device: {base.error}",
                "run with -v for the server's output",
            )
        record = _record_factory(mt, tgt, tool_version)
        base_costs = base.task_costs(mt.function_task)
        new_records: list[Record] = []
        for key, st in states.items():
            st.baseline = base_costs.get(key)
            did = config_id(st.task.default)
            st.pending.discard(did)
            if did not in st.measured:
                st.measured[did] = st.baseline
                new_records.append(record(st.task, st.task.default, base, st.baseline, None))
        append_records(settings.output, new_records)
        written = len(new_records)
        say(_progress(states, 0, settings.trials, base.unit, started, None))
        # Keep `parallel` candidate firmwares in flight: a new one is proposed (and compiled, here or on
        # a farm worker) as soon as any measurement returns.
        while True:
            fill(parallel)
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in done:
                proposal = in_flight.pop(fut)
                rounds += 1
                try:
                    m = fut.result()
                except TvmcError as err:  # the farm lost the candidate set everywhere: not measured
                    say(f"round {rounds}: not measured: {err}")
                    for key, config in proposal.items():
                        states[key].pending.discard(config_id(config))
                        states[key].trials += 1
                    continue
                error = m.error
                if error is None:
                    error = _compare(base.outputs, m.outputs, mt, settings)
                costs = m.task_costs(mt.function_task) if error is None else {}
                out = []
                for key, config in proposal.items():
                    st = states[key]
                    st.pending.discard(config_id(config))
                    st.trials += 1
                    cost = costs.get(key) if error is None else None
                    best_before = st.best()
                    st.measured[config_id(config)] = cost
                    if cost is not None and (best_before is None or cost < best_before[1]):
                        st.since_best = 0
                    else:
                        st.since_best += 1
                    out.append(record(st.task, config, m, cost, error))
                append_records(settings.output, out)
                written += len(out)
                say(_progress(states, rounds, settings.trials, m.unit, started, error))
    finally:
        # On an error (or Ctrl-C) candidates not started yet are dropped; running ones end on their own.
        pool.shutdown(wait=True, cancel_futures=True)
    best = {}
    for key, st in states.items():
        b = st.best()
        if b is not None:
            best[key] = (b[0], b[1], st.baseline)
    return TuneSummary(rounds, written, sum(base_costs.values()), base.unit, best)


def _record_factory(
    mt: ModelTasks, tgt: str, tool_version: str
) -> Callable[[Task, Mapping[str, int], Measurement, float | None, str | None], Record]:
    def record(
        task: Task, config: Mapping[str, int], m: Measurement, cost: float | None, error: str | None
    ) -> Record:
        return Record(
            task=task.key,
            config=dict(config),
            cost=cost,
            unit=m.unit,
            target=tgt,
            platform=m.platform,
            board=m.board,
            tool_version=tool_version,
            task_name=task.name,
            calls=task.calls,
            tvm_version=_tvm_version(),
            model=mt.model_name,
            worker=m.worker,
            error=error,
        )

    return record


def _propose(
    states: Mapping[str, TaskState], settings: TuneSettings, rng: random.Random
) -> dict[str, dict[str, int]]:
    """One candidate set: a config for every task that still has trials (and patience) left."""
    proposal = {}
    for key, st in states.items():
        if st.trials + len(st.pending) >= settings.trials:
            continue
        if settings.early_stopping is not None and st.since_best >= settings.early_stopping:
            continue
        config = st.propose(rng)
        if config is not None:
            proposal[key] = config
            st.pending.add(config_id(config))
    return proposal


def _tvm_version() -> str:
    import tvm

    return str(tvm.__version__)


def _compile(settings: TuneSettings, configs: Mapping[str, Mapping[str, int]], path: Path) -> Path:
    from tvmc_micro.compiler import compile_model

    compile_model(
        settings.model,
        path,
        target=settings.target,
        input_shapes=dict(settings.input_shapes),
        kernel_configs=configs,
        progress=lambda _m: None,
    )
    return path


def _inputs(mlf: Path, seed: int) -> list[bytes]:
    """Seeded random inputs, one per model input (as the MLF's metadata declares them)."""
    from tvmc_micro.project import read_mlf_metadata
    from tvmc_micro.runner import make_inputs

    model = read_mlf_metadata(mlf)["models"][0]
    arrays = make_inputs(model["inputs"], None, "random", seed)
    return [np.ascontiguousarray(a).tobytes() for a in arrays]


def _compare(
    ref: Sequence[bytes], got: Sequence[bytes], mt: ModelTasks, settings: TuneSettings
) -> str | None:
    """None when the candidate firmware's outputs equal the baseline's (float: within FLOAT_TOLERANCE of
    the largest value; integer: bit for bit); else why not."""
    if len(ref) != len(got):
        return f"outputs differ from the hand-set kernels' ({len(got)} outputs, expected {len(ref)})"
    for k, (a, b) in enumerate(zip(ref, got, strict=True)):
        if a == b:
            continue
        if len(a) != len(b) or len(a) % 4:
            return f"output {k} differs from the hand-set kernels'"
        x = np.frombuffer(a, np.float32).astype(np.float64)
        y = np.frombuffer(b, np.float32).astype(np.float64)
        scale = max(1e-30, float(np.max(np.abs(x))) if x.size else 1.0)
        err = float(np.max(np.abs(x - y))) / scale if x.size else 0.0
        if not err <= FLOAT_TOLERANCE:
            return f"output {k} differs from the hand-set kernels' (max relative error {err:.3g})"
    return None


def _progress(
    states: Mapping[str, TaskState], rounds: int, trials: int, unit: str, started: float, error: str | None
) -> str:
    done = sum(st.trials for st in states.values())
    total = sum(min(trials, max(0, space_size(st.task.space) - 1)) for st in states.values())
    elapsed = time.monotonic() - started
    left = elapsed / max(1, done) * max(0, total - done) if done else float("nan")
    parts = []
    for st in states.values():
        b = st.best()
        if b is not None and st.baseline:
            parts.append(f"{st.task.name} {b[1] / st.baseline:.3f}")
    head = f"round {rounds}: trials {done}/{total}"
    tail = f", about {left:.0f} s left" if left == left else ""
    msg = f"{head}{tail}; best cost / hand-set: {', '.join(parts)}"
    return msg + (f" (this firmware: {error})" if error else "")


def summary_lines(summary: TuneSummary, mt: ModelTasks) -> list[str]:
    names = {t.key: t.name for t in mt.tasks}
    lines = []
    tuned_total = summary.baseline_total
    for key, (config, cost, base) in summary.best.items():
        if base is not None:
            tuned_total -= base - cost
        gain = f"{base / cost:.3f}x" if base and cost else "?"
        cfg = ", ".join(f"{k}={v}" for k, v in sorted(config.items()))
        lines.append(
            f"  {names.get(key, key)}: best {cost:,.6g} {summary.unit} ({cfg}), "
            f"hand-set {base or 0:,.6g}: {gain}"
        )
    lines.append(
        f"  model (sum of tasks, estimated): hand-set {summary.baseline_total:,.6g} -> "
        f"tuned {tuned_total:,.6g} {summary.unit}"
    )
    return lines
