"""`--json FILE` of compile, build, run and analyze: writing, output summaries, the documented schemas and a
small checker for them (the JSON Schema subset the schemas use: type, required, properties, items, enum,
minimum). docs/json-output.md describes every field; tests check each command's output with `check`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tvmc_micro.errors import TvmcError

Schema = dict[str, Any]


def check_writable(path: str) -> None:
    target = Path(path)
    if target.is_dir():
        raise TvmcError(f"--json {path} is a directory", "give a file name, e.g. result.json")
    if not target.parent.is_dir():
        raise TvmcError(
            f"cannot write --json {path}: directory {target.parent} does not exist", "create it first"
        )


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to null (JSON has no NaN/inf)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str, doc: Mapping[str, Any]) -> None:
    check_writable(path)
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(_plain(dict(doc)), indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)


def output_summary(outputs: Mapping[str, np.ndarray], outputs_meta: Sequence[Mapping[str, Any]]) -> list[Any]:
    """One sample's outputs: per output name, shape, dtype, values (up to 1024 of them), min/max/argmax."""
    rows = []
    for t in outputs_meta:
        v = outputs[t["name"]]
        flat = v.reshape(-1)
        rows.append(
            {
                "name": t["name"],
                "shape": [int(d) for d in v.shape],
                "dtype": str(v.dtype),
                "values": flat[:1024].tolist(),
                "truncated": bool(flat.size > 1024),
                "min": float(flat.min()) if flat.size else None,
                "max": float(flat.max()) if flat.size else None,
                "argmax": int(np.argmax(flat)) if flat.size else None,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------- schemas

_NUM = {"type": ["number", "null"]}
_INT = {"type": "integer", "minimum": 0}
_COUNTER: Schema = {
    "type": "object",
    "required": ["unit", "per_tick", "exact", "basis", "timer_hz", "clock_hz"],
    "properties": {
        "unit": {"enum": ["instructions", "cycles", "seconds"]},
        "per_tick": {"type": "number"},
        "exact": {"type": "boolean"},
        "basis": {"type": "string"},
        "timer_hz": {"type": "integer", "minimum": 1},
        "clock_hz": {"type": ["integer", "null"]},
    },
}
_SOURCE_OP: Schema = {
    "type": "object",
    "required": ["index", "type", "name"],
    "properties": {"index": _INT, "type": {"type": "string"}, "name": {"type": "string"}},
}
_OUTPUT: Schema = {
    "type": "object",
    "required": ["name", "shape", "dtype", "values", "truncated", "min", "max", "argmax"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": _INT},
        "dtype": {"type": "string"},
        "values": {"type": "array", "items": {"type": "number"}},
        "truncated": {"type": "boolean"},
    },
}
_CHECK_FIELDS = ["max_abs_diff", "max_rel_diff", "rmse", "mae"]
_VALIDATION: Schema = {
    "type": "object",
    "required": ["reference", "samples", "passed", "outputs", "per_sample"],
    "properties": {
        "reference": {"type": "string"},
        "samples": {"type": "integer", "minimum": 1},
        "passed": {"type": "boolean"},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "name",
                    "samples",
                    "samples_failing",
                    "first_failing_samples",
                    "mismatched",
                    *_CHECK_FIELDS,
                    "cosine_min",
                    "cosine_mean",
                    "l2r_max",
                    "top1_agreement",
                ],
                "properties": {"top1_agreement": {"type": "number"}, "mismatched": _INT},
            },
        },
        "per_sample": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sample", "passed", "outputs"],
                "properties": {
                    "outputs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": [
                                "name",
                                "mismatched",
                                "first_mismatches",
                                *_CHECK_FIELDS,
                                "cosine",
                                "l2r",
                                "top1_agree",
                            ],
                            "properties": {
                                "first_mismatches": {"type": "array", "items": _INT},
                                "top1_agree": {"type": "boolean"},
                            },
                        },
                    }
                },
            },
        },
    },
}
_PROFILE: Schema = {
    "type": "object",
    "required": ["unit", "counter", "operators", "total"],
    "properties": {
        "counter": _COUNTER,
        "operators": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "index",
                    "kernel",
                    "source_ops",
                    "output_shape",
                    "macs",
                    "ticks",
                    "count",
                    "share",
                    "per_mac",
                    "weight_bytes",
                    "live_arena_bytes",
                ],
                "properties": {
                    "index": _INT,
                    "kernel": {"type": "string"},
                    "source_ops": {"type": "array", "items": _SOURCE_OP},
                    "macs": {"type": ["integer", "null"]},
                    "ticks": _INT,
                    "count": {"type": "number"},
                    "share": {"type": "number"},
                    "per_mac": _NUM,
                },
            },
        },
        "total": {
            "type": "object",
            "required": ["ticks", "count", "macs", "per_mac", "weight_bytes", "peak_live_arena_bytes"],
        },
    },
}
_TIMING: Schema = {
    "type": "object",
    "required": ["runs", "ticks", "counter", "unit", "mean", "min", "max", "estimate"],
    "properties": {
        "runs": {"type": "integer", "minimum": 1},
        "counter": _COUNTER,
        "estimate": {
            "type": ["object", "null"],
            "required": ["ms", "clock_hz", "from", "assumes"],
        },
    },
}
RUN_SCHEMA: Schema = {
    "type": "object",
    "required": [
        "schema",
        "project_dir",
        "model",
        "device",
        "counter",
        "samples",
        "outputs",
        "timing",
        "profile",
        "validation",
        "worker",
        "exit_status",
    ],
    "properties": {
        "schema": {"enum": ["tvmc-micro/run/1"]},
        "worker": {"type": ["string", "null"]},
        "samples": {"type": "integer", "minimum": 1},
        "outputs": {"type": "array", "items": {"type": "array", "items": _OUTPUT}},
        "counter": {**_COUNTER, "type": ["object", "null"]},
        "timing": {**_TIMING, "type": ["object", "null"]},
        "profile": {**_PROFILE, "type": ["object", "null"]},
        "validation": {**_VALIDATION, "type": ["object", "null"]},
        "exit_status": {"enum": [0, 1]},
    },
}
_MEMORY: Schema = {
    "type": "object",
    "required": ["arena_bytes", "constants_bytes", "activation_lower_bound_bytes", "io_bytes", "state_bytes"],
}
COMPILE_SCHEMA: Schema = {
    "type": "object",
    "required": ["schema", "output", "output_format", "model", "memory", "operators", "timing_sec", "notes"],
    "properties": {
        "schema": {"enum": ["tvmc-micro/compile/1"]},
        "output": {"type": "string"},
        "output_format": {"enum": ["mlf", "so"]},
        "memory": _MEMORY,
        "operators": {"type": "integer", "minimum": 0},
        "timing_sec": {"type": "object"},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}
_STACK: Schema = {
    "type": ["object", "null"],
    "required": ["stack_bytes", "estimated_bytes", "worst_path", "dynamic_frames"],
    "properties": {
        "stack_bytes": _INT,
        "estimated_bytes": _INT,
        "worst_path": {"type": "array", "items": {"type": "string"}},
        "dynamic_frames": {"type": "array", "items": {"type": "string"}},
    },
}
_SIZES: Schema = {
    "type": "object",
    "required": ["image", "size_tool", "berkeley", "sections", "usage", "stack"],
    "properties": {
        "image": {"type": "string"},
        "size_tool": {"type": "string"},
        "berkeley": {
            "type": "object",
            "required": ["text", "data", "bss", "dec"],
            "properties": {"text": _INT, "data": _INT, "bss": _INT, "dec": _INT},
        },
        "sections": {"type": "object"},
        "usage": {
            "type": ["object", "null"],
            "required": ["flash_bytes", "flash_total_bytes", "ram_bytes", "ram_total_bytes"],
            "properties": {
                "flash_bytes": _INT,
                "flash_total_bytes": _INT,
                "ram_bytes": _INT,
                "ram_total_bytes": _INT,
            },
        },
        "stack": _STACK,
    },
}
ANALYZE_SCHEMA: Schema = {
    "type": "object",
    "required": ["schema", "source", "model", "totals", "memory", "operators", "arena_timeline", "build"],
    "properties": {
        "schema": {"enum": ["tvmc-micro/analyze/1"]},
        "totals": {
            "type": "object",
            "required": ["operators", "macs", "weight_bytes", "arena_bytes", "activation_lower_bound_bytes"],
        },
        "memory": _MEMORY,
        "operators": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "index",
                    "kernel",
                    "source_ops",
                    "output_shape",
                    "macs",
                    "weight_bytes",
                    "live_arena_bytes",
                ],
                "properties": {"source_ops": {"type": "array", "items": _SOURCE_OP}, "macs": _INT},
            },
        },
        "build": {
            "type": ["object", "null"],
            "required": [
                "sizes",
                "flash_bytes",
                "weight_bytes",
                "other_flash_bytes",
                "static_ram_bytes",
                "stack_estimate_bytes",
            ],
            "properties": {
                "sizes": _SIZES,
                "flash_bytes": _INT,
                "weight_bytes": _INT,
                "other_flash_bytes": {"type": "integer"},
                "static_ram_bytes": _INT,
                "stack_estimate_bytes": {"type": ["integer", "null"], "minimum": 0},
            },
        },
        "arena_timeline": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "kind", "offset", "size_bytes", "first_step", "last_step"],
                "properties": {"offset": _INT, "size_bytes": _INT, "first_step": _INT, "last_step": _INT},
            },
        },
    },
}
BUILD_SCHEMA: Schema = {
    "type": "object",
    "required": ["schema", "project_dir", "platform", "model", "elapsed_sec", "sizes", "notes"],
    "properties": {
        "schema": {"enum": ["tvmc-micro/build/1"]},
        "project_dir": {"type": "string"},
        "platform": {"type": "string"},
        "model": {"type": ["string", "null"]},
        "elapsed_sec": {"type": "number", "minimum": 0},
        "sizes": {**_SIZES, "type": ["object", "null"]},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}
SCHEMAS = {"run": RUN_SCHEMA, "compile": COMPILE_SCHEMA, "analyze": ANALYZE_SCHEMA, "build": BUILD_SCHEMA}

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "null": type(None),
}


def check(doc: Any, schema: Schema, where: str = "$") -> list[str]:
    """Every way `doc` breaks `schema` (empty when it conforms)."""
    problems: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        ok = any(
            isinstance(doc, _TYPES[n]) and not (n in ("integer", "number") and isinstance(doc, bool))
            for n in names
        )
        if not ok:
            return [f"{where}: {type(doc).__name__} is not {' or '.join(names)}"]
    if "enum" in schema and doc not in schema["enum"]:
        problems.append(f"{where}: {doc!r} is not one of {schema['enum']}")
    if "minimum" in schema and isinstance(doc, int | float) and doc < schema["minimum"]:
        problems.append(f"{where}: {doc} < {schema['minimum']}")
    if isinstance(doc, dict):
        for key in schema.get("required", []):
            if key not in doc:
                problems.append(f"{where}: missing {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in doc:
                problems += check(doc[key], sub, f"{where}.{key}")
    if isinstance(doc, list) and "items" in schema:
        for k, item in enumerate(doc):
            problems += check(item, schema["items"], f"{where}[{k}]")
    return problems
