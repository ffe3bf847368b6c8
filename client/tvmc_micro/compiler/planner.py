"""Arena planner: one static arena for every intermediate tensor and kernel workspace.

Lifetimes are intervals over the executor's call order; tensors whose intervals overlap must not
overlap in memory, whatever their dtype. A kernel that reads an element only to overwrite the same
element (see schedule.inplace_pairs) may write its output over an input that dies at that call. A
kernel whose writes trail its reads by a bounded distance (a depthwise conv over NHWC rows) may write
its output starting `lead` bytes before its input: the pair then shares one block, the output shifted.
Placement is greedy by size (largest first, lowest offset that fits), like TFLite Micro's planner.
"""

from __future__ import annotations

from collections.abc import Sequence
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


# (output key, input key) or (output key, input key, lead): the output may start `lead` bytes (a multiple
# of ALIGNMENT) before the input, 0 meaning exactly over it.
InPlace = tuple[int, int] | tuple[int, int, int]


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_arena(intervals: list[Interval], inplace: Sequence[InPlace] | None = None) -> ArenaPlan:
    """Place `intervals`; `inplace` lists output/input pairs that may share memory (see InPlace)."""
    by_key = {iv.key: iv for iv in intervals}
    parent = {iv.key: iv.key for iv in intervals}
    rel = {iv.key: 0 for iv in intervals}  # byte offset relative to the parent

    def root(k: int) -> tuple[int, int]:
        """(root key, offset of k relative to the root)."""
        off = 0
        while parent[k] != k:
            off += rel[k]
            k = parent[k]
        return k, off

    # Merge in-place pairs when the input dies exactly where the output is born.
    for pair in inplace or []:
        out_key, in_key = pair[0], pair[1]
        lead = pair[2] if len(pair) == 3 else 0
        if out_key not in by_key or in_key not in by_key or lead % ALIGNMENT:
            continue
        (ro, off_o), (ri, off_i) = root(out_key), root(in_key)
        if ro == ri:
            continue
        members_i = [k for k in parent if root(k)[0] == ri]
        members_o = [k for k in parent if root(k)[0] == ro]
        end_i = max(by_key[k].end for k in members_i)
        start_o = min(by_key[k].start for k in members_o)
        if end_i == start_o:
            # out_key sits at in_key - lead: place the output group's root accordingly.
            parent[ro] = ri
            rel[ro] = off_i - lead - off_o

    groups: dict[int, list[tuple[int, int]]] = {}
    for k in parent:
        r, off = root(k)
        groups.setdefault(r, []).append((k, off))
    blocks = []
    shift: dict[int, int] = {}  # root -> how far its lowest member sits above the root's own offset
    for r, ks in groups.items():
        low = min(off for _, off in ks)
        shift[r] = -low
        blocks.append(
            Interval(
                key=r,
                size=_align(max(off - low + by_key[k].size for k, off in ks)),
                start=min(by_key[k].start for k, _ in ks),
                end=max(by_key[k].end for k, _ in ks),
            )
        )
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
    offsets = {}
    for k in parent:
        r, off = root(k)
        offsets[k] = offsets_by_root[r] + shift[r] + off
    return ArenaPlan(offsets=offsets, size=_align(size), groups={k: root(k)[0] for k in parent})


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
