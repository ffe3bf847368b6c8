"""Arena planner: one static arena for every intermediate tensor and kernel workspace.

Lifetimes are intervals over the executor's call order; tensors whose intervals overlap must not
overlap in memory, whatever their dtype. A kernel that reads an element only to overwrite the same
element (see schedule.inplace_pairs) may write its output over an input that dies at that call. A
kernel whose writes trail its reads by a bounded distance (a depthwise conv over NHWC rows) may write
its output starting `lead` bytes before its input: the pair then shares one block, the output shifted.
Placement is greedy: blocks are placed one at a time at an offset where they overlap no block live at the
same time. Which order and which gap decide how much the arena fragments, and no single rule is best for
every model, so a few orders (largest first, like TFLite Micro's planner; by birth; by lifetime) times two
fits (lowest offset, tightest gap) are tried and the smallest arena kept. The arena can never be smaller than
the most bytes live at one step (in-place pairs aside), so the search stops as soon as one reaches that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
        # At the boundary step the output group may hold only tensors that step writes (born there, live
        # on). A member born and dead at that step is one more tensor the step reads — e.g. the other
        # operand of an elementwise op when both are model inputs read at step 0 — and must not share
        # bytes with the input group.
        read_at_boundary = any(by_key[k].end == start_o for k in members_o)
        if end_i == start_o and not read_at_boundary:
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
    offsets_by_root, size = _place_best(blocks)
    offsets = {}
    for k in parent:
        r, off = root(k)
        offsets[k] = offsets_by_root[r] + shift[r] + off
    return ArenaPlan(offsets=offsets, size=_align(size), groups={k: root(k)[0] for k in parent})


# Orders in which blocks are placed (a sort key each); ties broken by start, then key, for determinism.
_ORDERS: tuple[Callable[[Interval], tuple[int, ...]], ...] = (
    lambda b: (-b.size, b.start, b.key),
    lambda b: (b.start, -b.size, b.key),
    lambda b: (-(b.end - b.start), -b.size, b.start, b.key),
    lambda b: (-b.size * (b.end - b.start + 1), b.start, b.key),
    lambda b: (-b.end, -b.size, b.key),
)


def _peak(blocks: Sequence[Interval]) -> int:
    """The most bytes live at one step: no placement of `blocks` is smaller."""
    steps = sorted({b.start for b in blocks})
    return max((sum(b.size for b in blocks if b.start <= t <= b.end) for t in steps), default=0)


def _place(blocks: Sequence[Interval], tightest: bool) -> tuple[dict[int, int], int]:
    """Place `blocks` in the given order: the lowest free offset, or with `tightest` the free gap that
    leaves the least room (an unbounded gap at the top only when no gap between blocks fits)."""
    placed: list[tuple[Interval, int]] = []
    offsets: dict[int, int] = {}
    for b in blocks:
        busy = sorted((off, off + p.size) for p, off in placed if not (p.end < b.start or b.end < p.start))
        gaps: list[tuple[int, int]] = []  # (offset, room) of each free gap below the highest busy block
        pos = 0
        for lo, hi in busy:
            if lo > pos:
                gaps.append((pos, lo - pos))
            pos = max(pos, hi)
        fitting = [(off, room) for off, room in gaps if room >= b.size]
        if not fitting:
            offset = pos
        elif tightest:
            offset = min(fitting, key=lambda g: (g[1], g[0]))[0]
        else:
            offset = fitting[0][0]
        placed.append((b, offset))
        offsets[b.key] = offset
    return offsets, max((off + b.size for b, off in placed), default=0)


def _place_best(blocks: Sequence[Interval]) -> tuple[dict[int, int], int]:
    """The smallest of the placements of every order and fit (the first one found on a tie)."""
    floor = _peak(blocks)
    best: tuple[dict[int, int], int] | None = None
    for order in _ORDERS:
        ordered = sorted(blocks, key=order)
        for tightest in (False, True):
            offsets, size = _place(ordered, tightest)
            if best is None or size < best[1]:
                best = (offsets, size)
            if best[1] <= floor:
                return best
    assert best is not None
    return best


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
