"""Tuning tasks: a model's distinct kernel workloads, each with the knobs its schedule offers.

A task is identified by its *workload key*: the structural hash of the unscheduled PrimFunc (shapes, dtypes,
the computation; not its name, not the weights, which are parameters) together with the target. Two
operators of one model with the same workload are one task; the same layer in another model is the same
task, so records carry over.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Task:
    key: str  # workload_key
    name: str  # a readable name: the first kernel's function name
    functions: list[str]  # the model's PrimFuncs of this workload (one per distinct function)
    calls: int  # how many times one inference calls them
    space: dict[str, list[int]]  # knob -> values; empty: nothing to tune
    default: dict[str, int]  # the hand-set configuration
    macs: int = 0  # per inference, all calls

    @property
    def size(self) -> int:
        from tvmc_micro.tune.search import space_size

        return space_size(self.space)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "functions": self.functions,
            "calls": self.calls,
            "macs": self.macs,
            "space": self.space,
            "default": self.default,
            "configs": self.size,
        }


def target_json(target: Any) -> str:
    """A target (the dict form of tvmc_micro.compiler.targets) as canonical JSON text."""
    return json.dumps(target, sort_keys=True, separators=(",", ":"))


def workload_key(func: Any, target: Any, name: str = "kernel") -> str:
    """`<stem>-<16 hex>`: the structural hash of the unscheduled PrimFunc plus the target. The stem (the
    function's name without its numbering, e.g. fused_matmul_add_relu) is for humans only."""
    import tvm_ffi

    digest = hashlib.sha256(f"{tvm_ffi.structural_hash(func)}|{target_json(target)}".encode()).hexdigest()
    stem = re.sub(r"[^A-Za-z0-9_]", "_", re.sub(r"\d+", "", name))[:48] or "kernel"
    return f"{stem}-{digest[:16]}"


@dataclass
class ModelTasks:
    """What tuning needs of a model: its tasks and the mapping function name -> task key."""

    tasks: list[Task]
    function_task: dict[str, str]
    target: Any  # the target dict
    target_str: str
    model_name: str


def extract_tasks(
    model_path: Path,
    target: str,
    *,
    input_shapes: Mapping[str, list[int]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ModelTasks:
    """The model's tasks, by running the compiler's first stages (read, import, Relax lowering)."""
    from tvmc_micro.compiler import driver
    from tvmc_micro.compiler.quantized.ckernel_knobs import kernel_space
    from tvmc_micro.compiler.schedule import tuning_space

    say = progress or (lambda _m: None)
    options = driver.CompileOptions(target=target, input_shapes=dict(input_shapes or {}))
    # The output path is only checked (never written) by these stages.
    c = driver.Compilation(Path(model_path), Path(model_path).with_suffix(".tune-unused.tar"), options, say)
    for name, stage in driver.PIPELINE:
        if name == "codegen":
            break
        stage(c)
    graph = c.need(c.graph, "graph")
    parsed = c.need(c.target, "target")
    by_key: dict[str, Task] = {}
    function_task: dict[str, str] = {}
    for call in graph.calls:
        fn = call.func
        if fn not in function_task:
            func = c.flat[fn]
            key = workload_key(func, parsed.target, fn)
            function_task[fn] = key
            if key not in by_key:
                # The int8 DSP C kernels' knobs where ckernels replaces the PrimFunc, else the schedule's.
                ck = kernel_space(func, parsed.target)
                space, default = ck if ck is not None else tuning_space(func)
                by_key[key] = Task(key, fn, [], 0, space, default)
            if fn not in by_key[key].functions:
                by_key[key].functions.append(fn)
        by_key[function_task[fn]].calls += 1
    _add_census(c, by_key, function_task)
    return ModelTasks(list(by_key.values()), function_task, parsed.target, parsed.target_str, c.name)


def _add_census(c: Any, by_key: dict[str, Task], function_task: dict[str, str]) -> None:
    """MACs per task (all its calls in one inference), from the compiler's per-kernel count."""
    from tvmc_micro.compiler.op_report import kernel_macs

    macs: dict[str, int] = {}
    for call in c.need(c.graph, "graph").calls:
        if call.func not in macs:
            try:
                macs[call.func] = int(kernel_macs(c.flat[call.func]))
            except Exception:
                macs[call.func] = 0
        by_key[function_task[call.func]].macs += macs[call.func]


def format_tasks(mt: ModelTasks) -> str:
    lines = [f"{len(mt.tasks)} task(s) of {mt.model_name} for target {mt.target_str!r}:"]
    for k, t in enumerate(mt.tasks):
        knobs = ", ".join(f"{name} in {vals}" for name, vals in t.space.items()) or "nothing to tune"
        default = ", ".join(f"{n}={v}" for n, v in t.default.items())
        lines.append(f"  {k:>2}. {t.key}  calls {t.calls}  MACs {t.macs:,}  configs {t.size}")
        lines.append(f"      knobs: {knobs}" + (f"; hand-set: {default}" if default else ""))
    return "\n".join(lines)
