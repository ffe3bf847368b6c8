"""Records (load, append, select, best) and the schedule's knob space, without a device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tvmc_micro import __version__
from tvmc_micro.errors import TvmcError
from tvmc_micro.tune.records import (
    Record,
    append_records,
    best_configs,
    load_records,
    most_common_device,
    select,
)
from tvmc_micro.tune.search import TaskState, all_configs, neighbours
from tvmc_micro.tune.tasks import Task


def _rec(task: str, cost: float | None, **kw: object) -> Record:
    base: dict[str, object] = dict(
        task=task,
        config={"tile_f": 4},
        cost=cost,
        unit="instructions",
        target="T",
        platform="cortex_m",
        board="mps2_an386",
        tool_version=__version__,
    )
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


def test_records_round_trip_and_best(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    append_records(path, [_rec("a", 10.0), _rec("a", 7.0, config={"tile_f": 8}), _rec("b", None, error="x")])
    append_records(path, [_rec("a", 9.0, config={"tile_f": 2})])  # appended, not rewritten
    records, notes = load_records(path)
    assert len(records) == 4 and notes == []
    best = best_configs(records)
    assert set(best) == {"a"} and best["a"].config == {"tile_f": 8} and best["a"].cost == 7.0


def test_unreadable_lines_are_skipped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    append_records(path, [_rec("a", 1.0)])
    with path.open("a") as f:
        f.write('{"format": "other"}\nnot json\n[1]\n{"format": "tvmc-micro/tune-record/1", "task": "a"}\n')
    records, notes = load_records(path)
    assert len(records) == 1
    assert len(notes) == 1 and "skipped 4 unreadable line(s)" in notes[0]


def test_missing_empty_and_binary_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(TvmcError, match="does not exist"):
        load_records(tmp_path / "none.jsonl")
    (tmp_path / "junk").write_text("nothing here\n")
    with pytest.raises(TvmcError, match="holds no tuning records"):
        load_records(tmp_path / "junk")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TvmcError, match="not a text file"):
        load_records(tmp_path / "bin")


def test_select_ignores_other_target_tool_version_and_board() -> None:
    records = [
        _rec("a", 1.0),
        _rec("a", 1.0, target="U"),
        _rec("a", 1.0, tool_version="0.0.1"),
        _rec("a", 1.0, board="mps2_an385"),
    ]
    kept, notes = select(
        records, target="T", tool_version=__version__, platform="cortex_m", board="mps2_an386"
    )
    assert kept == [records[0]]
    text = "; ".join(notes)
    assert "another target" in text and "tool version 0.0.1" in text and "board mps2_an385" in text
    kept, _ = select(records, target="T", tool_version=__version__)
    assert len(kept) == 2
    assert most_common_device(kept) in {("cortex_m", "mps2_an386"), ("cortex_m", "mps2_an385")}
    assert most_common_device([]) is None


def test_space_and_search_proposals_are_seeded_and_never_repeat() -> None:
    import random

    space = {"tile_f": [1, 2, 4, 8, 16, 32], "tile_g": [1, 2, 4, 8], "unroll_k": [1, 2]}
    configs = all_configs(space)
    assert all(c["tile_f"] * c["tile_g"] <= 32 for c in configs)
    assert {"tile_f": 32, "tile_g": 2, "unroll_k": 1} not in configs
    assert all(c in configs for c in neighbours({"tile_f": 4, "tile_g": 4, "unroll_k": 1}, space))
    task = Task("k", "f", ["f"], 1, space, {"tile_f": 4, "tile_g": 4, "unroll_k": 1})

    def run(seed: int) -> list[dict[str, int]]:
        st = TaskState(task)
        rng = random.Random(seed)
        out = []
        for n in range(len(configs) + 3):
            c = st.propose(rng)
            if c is None:
                break
            out.append(c)
            st.measured[tuple(sorted(c.items()))] = float(100 - n)
            st.trials += 1
        return out

    a, b = run(1), run(1)
    assert a == b  # seeded
    assert len(a) == len(configs)  # every config once, then None
    assert len({tuple(sorted(c.items())) for c in a}) == len(a)


def test_record_from_json_rejects_bad_fields() -> None:
    good = _rec("a", 1.0).as_json()
    assert Record.from_json(good).cost == 1.0
    for bad in ({"config": {"tile_f": "4"}}, {"cost": "1"}, {"format": "x"}):
        with pytest.raises(ValueError):
            Record.from_json({**good, **bad})
    assert json.loads(json.dumps(good))["format"] == "tvmc-micro/tune-record/1"
