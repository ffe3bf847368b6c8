"""Tuning records: JSON lines, one per measured candidate (docs/tuning.md).

A line: {"format": "tvmc-micro/tune-record/1", "task": KEY, "task_name": NAME, "config": {knob: value},
"cost": N or null, "unit": "instructions"|"cycles"|"seconds", "calls": N, "target": TARGET_JSON,
"platform": P, "board": B, "tool_version": V, "tvm_version": V, "model": NAME, "worker": W,
"error": null or why, "time": ISO-8601}. Files are only ever appended to; a line that does not parse is
skipped with a note, so a file cut short by a crash still loads.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvmc_micro.errors import TvmcError

FORMAT = "tvmc-micro/tune-record/1"


@dataclass
class Record:
    task: str
    config: dict[str, int]
    cost: float | None
    unit: str
    target: str  # canonical JSON of the target dict (tvmc_micro.tune.tasks.target_json)
    platform: str
    board: str
    tool_version: str
    task_name: str = ""
    calls: int = 1
    tvm_version: str = ""
    model: str = ""
    worker: str = ""
    error: str | None = None
    time: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    )

    @property
    def valid(self) -> bool:
        return self.error is None and self.cost is not None

    def config_id(self) -> tuple[tuple[str, int], ...]:
        return config_id(self.config)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "task": self.task,
            "task_name": self.task_name,
            "config": self.config,
            "cost": self.cost,
            "unit": self.unit,
            "calls": self.calls,
            "target": self.target,
            "platform": self.platform,
            "board": self.board,
            "tool_version": self.tool_version,
            "tvm_version": self.tvm_version,
            "model": self.model,
            "worker": self.worker,
            "error": self.error,
            "time": self.time,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Record:
        if d.get("format") != FORMAT:
            raise ValueError(f"format is {d.get('format')!r}, not {FORMAT!r}")
        config = d["config"]
        if not isinstance(config, dict) or not all(isinstance(v, int) for v in config.values()):
            raise ValueError("config must be an object of integers")
        cost = d.get("cost")
        if cost is not None and not isinstance(cost, int | float):
            raise ValueError("cost must be a number or null")
        return cls(
            task=str(d["task"]),
            config={str(k): int(v) for k, v in config.items()},
            cost=None if cost is None else float(cost),
            unit=str(d["unit"]),
            target=str(d["target"]),
            platform=str(d["platform"]),
            board=str(d["board"]),
            tool_version=str(d["tool_version"]),
            task_name=str(d.get("task_name", "")),
            calls=int(d.get("calls", 1)),
            tvm_version=str(d.get("tvm_version", "")),
            model=str(d.get("model", "")),
            worker=str(d.get("worker", "")),
            error=None if d.get("error") is None else str(d["error"]),
            time=str(d.get("time", "")),
        )


def config_id(config: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((str(k), int(v)) for k, v in config.items()))


def load_records(path: Path) -> tuple[list[Record], list[str]]:
    """The records of a file and notes about lines that were skipped. A missing file is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TvmcError(
            f"tuning records file {path} does not exist", "write one with: tvmc tune MODEL -o FILE"
        ) from None
    except UnicodeDecodeError:
        raise TvmcError(
            f"{path} is not a text file of tuning records", "pass the -o file of tvmc tune"
        ) from None
    records: list[Record] = []
    bad: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            records.append(Record.from_json(data))
        except (ValueError, KeyError, TypeError) as err:
            bad.append(f"line {n}: {err}")
    notes = []
    if bad:
        notes.append(
            f"{path}: skipped {len(bad)} unreadable line(s) "
            f"({'; '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})"
        )
    if not records and bad:
        raise TvmcError(
            f"{path} holds no tuning records ({len(bad)} unreadable lines)", "pass the -o file of tvmc tune"
        )
    return records, notes


def append_records(path: Path, records: Iterable[Record]) -> None:
    """Append lines (flushed at once: an interrupted run keeps what it measured)."""
    with path.open("a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r.as_json(), sort_keys=True) + "\n")
        f.flush()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def select(
    records: Iterable[Record],
    *,
    target: str,
    tool_version: str,
    platform: str | None = None,
    board: str | None = None,
) -> tuple[list[Record], list[str]]:
    """The records that apply to this target and tool version (and platform/board when given); notes say
    how many were ignored and why."""
    kept: list[Record] = []
    ignored: Counter[str] = Counter()
    for r in records:
        if r.target != target:
            ignored["another target"] += 1
        elif r.tool_version != tool_version:
            ignored[f"tool version {r.tool_version} (this is {tool_version})"] += 1
        elif platform is not None and r.platform != platform:
            ignored[f"platform {r.platform}"] += 1
        elif board is not None and r.board != board:
            ignored[f"board {r.board or '(none)'}"] += 1
        else:
            kept.append(r)
    notes = [f"ignored {n} record(s) of {why}" for why, n in sorted(ignored.items())]
    return kept, notes


def most_common_device(records: Iterable[Record]) -> tuple[str, str] | None:
    """The (platform, board) most records were measured on (what `tvmc compile` applies)."""
    counts = Counter((r.platform, r.board) for r in records if r.valid)
    return counts.most_common(1)[0][0] if counts else None


def best_configs(records: Iterable[Record]) -> dict[str, Record]:
    """Per task, its cheapest valid record."""
    best: dict[str, Record] = {}
    for r in records:
        if not r.valid:
            continue
        cur = best.get(r.task)
        assert r.cost is not None
        if cur is None or (cur.cost is not None and r.cost < cur.cost):
            best[r.task] = r
    return best
