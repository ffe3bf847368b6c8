"""What the device's timer counts, so `tvmc run` can say it (docs/timing.md).

The firmware reports only a tick rate (`timer_hz` in INFO). What a tick *means* depends on where the firmware
runs, which the project knows (its platform, board and options):

- QEMU with ``-icount shift=S`` (the cortex_m template's default, Zephyr's QEMU boards): virtual time
  advances 2**S ns per executed instruction, so a count of ticks is an exact instruction count, up to the
  timer's resolution (``1e9 / 2**S / timer_hz`` instructions per tick). It is not time on any real part.
- a real board whose counter runs at the core clock (Zephyr's cycle counter on Cortex-M): cycles.
- firmware that says (INFO's timer_kind) it timed with the core's cycle counter: the cortex_m firmware
  uses DWT CYCCNT when it finds it counting at run time, which it never does under QEMU (no DWT there).
- the host (crt_host, Zephyr native_sim) and QEMU without icount: time (host wall clock or QEMU's
  virtual clock following it), with the noise of a general-purpose OS.

`estimate_ms` turns instructions or cycles into milliseconds at a clock (`--cpu-freq`, else the board's
`clock_hz` from boards.yaml), assuming one instruction per cycle for instruction counts. That is an
estimate and is labelled as one wherever it is printed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNITS = ("instructions", "cycles", "seconds")
_ICOUNT = re.compile(r"shift=(\d+)")


@dataclass(frozen=True)
class Counter:
    """How to read the device's timer ticks."""

    unit: str  # one of UNITS
    per_tick: float  # units per timer tick (instructions, cycles or seconds)
    exact: bool  # repeatable to the tick (QEMU icount, cycle counters), not subject to host noise
    basis: str  # why, for humans: "QEMU -icount shift=0 (1 instruction = 1 ns of virtual time)"
    timer_hz: int
    clock_hz: int | None = None  # the real part's core clock (boards.yaml), None when unknown

    def count(self, ticks: float) -> float:
        return ticks * self.per_tick

    def resolution(self) -> str:
        return f"{self.per_tick:,.6g} {self.unit} per timer tick"

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "per_tick": self.per_tick,
            "exact": self.exact,
            "basis": self.basis,
            "timer_hz": self.timer_hz,
            "clock_hz": self.clock_hz,
        }


def time_counter(timer_hz: int, basis: str) -> Counter:
    return Counter("seconds", 1.0 / timer_hz, False, basis, timer_hz)


def icount_shift(argv: list[str] | tuple[str, ...]) -> int | None:
    """The S of `-icount shift=S` in a QEMU argv, None without -icount (or with shift=auto)."""
    for k, arg in enumerate(argv):
        if arg == "-icount" and k + 1 < len(argv):
            m = _ICOUNT.search(str(argv[k + 1]))
            return int(m.group(1)) if m else None
    return None


def qemu_icount_counter(timer_hz: int, shift: int, clock_hz: int | None, machine: str) -> Counter:
    ns_per_instruction = 2**shift
    return Counter(
        "instructions",
        1e9 / ns_per_instruction / timer_hz,
        True,
        f"QEMU {machine} -icount shift={shift} (1 instruction = {ns_per_instruction} ns of virtual time; "
        f"timer at {timer_hz:,} Hz virtual)",
        timer_hz,
        clock_hz,
    )


def _yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value > 0 else None


TIMER_KIND_CORE_CYCLES = 1  # INFO's timer_kind for the core's cycle counter (device/protocol.py)


def cycle_counter(timer_hz: int, clock_hz: int | None) -> Counter:
    """The firmware timed with the core's cycle counter (it found one that counts at run time)."""
    return Counter(
        "cycles",
        1.0,
        True,
        f"the core's cycle counter (DWT CYCCNT; the firmware found it counting), {timer_hz:,} Hz",
        timer_hz,
        clock_hz,
    )


def describe_counter(
    platform: str, project_dir: Path, options: Mapping[str, Any], timer_hz: int, timer_kind: int = 0
) -> Counter:
    """The counter of a project's device from its platform, saved options (board), run options and what
    the firmware said its timer counts (INFO's timer_kind)."""
    from microtvm_api.options import load_options

    if timer_hz <= 0:
        raise ValueError(f"timer rate must be positive, got {timer_hz}")
    saved = load_options(project_dir)
    board = str(options.get("board") or saved.get("board") or "")
    if timer_kind == TIMER_KIND_CORE_CYCLES and platform != "cortex_m":
        return cycle_counter(timer_hz, None)
    if platform == "crt_host":
        return time_counter(timer_hz, "host monotonic clock (crt_host runs the model as a host process)")
    if platform == "cortex_m":
        table = _yaml(project_dir / "boards.yaml")
        entry = table.get(board) if isinstance(table, dict) else None
        entry = entry if isinstance(entry, dict) else {}
        clock = _int_or_none(entry.get("clock_hz"))
        machine = str(entry.get("qemu_machine") or board or "?")
        if timer_kind == TIMER_KIND_CORE_CYCLES:
            return cycle_counter(timer_hz, clock)
        icount = str(options.get("qemu_icount", saved.get("qemu_icount", True))).lower() not in ("false", "0")
        if icount:
            from microtvm_api.qemu import ICOUNT_ARGS

            shift = icount_shift(list(ICOUNT_ARGS))
            if shift is not None:
                return qemu_icount_counter(timer_hz, shift, clock, machine)
        counter = time_counter(timer_hz, f"QEMU {machine} virtual clock without -icount (follows the host)")
        return Counter(**{**counter.__dict__, "clock_hz": clock})
    if platform == "zephyr":
        table = _yaml(project_dir / "boards.yaml")
        boards = table.get("boards") if isinstance(table, dict) else None
        entry = boards.get(board) if isinstance(boards, dict) else None
        entry = entry if isinstance(entry, dict) else {}
        clock = _int_or_none(entry.get("clock_hz"))
        transport = entry.get("transport")
        if transport == "qemu":
            qemu = entry.get("qemu")
            args = [str(a) for a in ((qemu.get("args") if isinstance(qemu, dict) else None) or [])]
            shift = icount_shift(args)
            machine = args[args.index("-machine") + 1] if "-machine" in args[:-1] else board
            if shift is not None:
                return qemu_icount_counter(timer_hz, shift, clock, machine)
            return Counter(
                **{**time_counter(timer_hz, f"QEMU {machine} virtual clock").__dict__, "clock_hz": clock}
            )
        if transport == "serial" and clock is not None and clock == timer_hz:
            return Counter(
                "cycles", 1.0, True, f"Zephyr cycle counter at the core clock ({clock:,} Hz)", timer_hz, clock
            )
        if transport == "native":
            return time_counter(timer_hz, "host clock (Zephyr native_sim runs as a host process)")
        counter = time_counter(timer_hz, f"Zephyr cycle counter at {timer_hz:,} Hz")
        return Counter(**{**counter.__dict__, "clock_hz": clock})
    return time_counter(timer_hz, f"the {platform} device's timer at {timer_hz:,} Hz")


def estimate_ms(counter: Counter, count: float, cpu_freq_hz: float | None) -> tuple[float, float] | None:
    """(milliseconds, the clock used) for a count of instructions or cycles; None for time counters or
    when no clock is known. Instructions are taken as one cycle each: an estimate."""
    if counter.unit == "seconds":
        return None
    clock = cpu_freq_hz if cpu_freq_hz is not None else counter.clock_hz
    if not clock:
        return None
    return count / float(clock) * 1e3, float(clock)
