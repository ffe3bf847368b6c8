"""Arena planner: one static arena for every intermediate tensor and kernel workspace.

Lifetimes are intervals over the executor's call order; tensors whose intervals overlap must not
overlap in memory, whatever their dtype. A kernel that reads an element only to overwrite the same
element (see schedule.inplace_pairs) may write its output over an input that dies at that call.
Placement is greedy by size (largest first, lowest offset that fits), like TFLite Micro's planner.
"""

from __future__ import annotations

from dataclasses import dataclass

ALIGNMENT = 16


@dataclass
class Interval:
    """A block to place: `size` bytes live from call `start` to call `end` (inclusive)."""

    key: int
    size: int
    start: int
    end: int


@dataclass
class ArenaPlan:
    offsets: dict[int, int]  # tensor id -> byte offset in the arena
    size: int  # arena bytes (a multiple of ALIGNMENT)
    groups: dict[int, int]  # tensor id -> id of the tensor whose memory it shares (in-place)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_arena(intervals: list[Interval], inplace: list[tuple[int, int]] | None = None) -> ArenaPlan:
    """Place `intervals`; `inplace` lists (output key, input key) pairs that may share memory."""
    by_key = {iv.key: iv for iv in intervals}
    parent = {iv.key: iv.key for iv in intervals}

    def root(k: int) -> int:
        while parent[k] != k:
            k = parent[k]
        return k

    # Merge in-place pairs when the input dies exactly where the output is born.
    for out_key, in_key in inplace or []:
        if out_key not in by_key or in_key not in by_key:
            continue
        ro, ri = root(out_key), root(in_key)
        if ro == ri:
            continue
        members_i = [k for k in parent if root(k) == ri]
        members_o = [k for k in parent if root(k) == ro]
        end_i = max(by_key[k].end for k in members_i)
        start_o = min(by_key[k].start for k in members_o)
        if end_i == start_o:
            parent[ro] = ri

    groups: dict[int, list[int]] = {}
    for k in parent:
        groups.setdefault(root(k), []).append(k)
    blocks = [
        Interval(
            key=r,
            size=_align(max(by_key[k].size for k in ks)),
            start=min(by_key[k].start for k in ks),
            end=max(by_key[k].end for k in ks),
        )
        for r, ks in groups.items()
    ]
    blocks.sort(key=lambda b: (-b.size, b.start, b.key))
    placed: list[tuple[Interval, int]] = []
    offsets_by_root: dict[int, int] = {}
    for b in blocks:
        busy = sorted((off, off + p.size) for p, off in placed if not (p.end < b.start or b.end < p.start))
        offset = 0
        for lo, hi in busy:
            if offset + b.size <= lo:
                break
            offset = max(offset, hi)
        placed.append((b, offset))
        offsets_by_root[b.key] = offset
    size = max((off + b.size for b, off in placed), default=0)
    offsets = {k: offsets_by_root[root(k)] for k in parent}
    return ArenaPlan(offsets=offsets, size=_align(size), groups={k: root(k) for k in parent})


def check_plan(intervals: list[Interval], plan: ArenaPlan) -> None:
    """Raise AssertionError if two live blocks overlap (in-place partners excepted) or leave the arena."""
    for i, a in enumerate(intervals):
        oa = plan.offsets[a.key]
        assert oa % ALIGNMENT == 0 and oa + a.size <= plan.size, f"{a} outside the arena"
        for b in intervals[i + 1 :]:
            if plan.groups[a.key] == plan.groups[b.key]:
                continue
            ob = plan.offsets[b.key]
            live_together = not (a.end < b.start or b.end < a.start)
            overlap = oa < ob + b.size and ob < oa + a.size
            assert not (live_together and overlap), f"{a} and {b} overlap"
