"""INFO's timer_kind: what the device's timer counts. A runtime without the field (8 bytes) is a plain
timer; a firmware that timed with the core's cycle counter is reported in cycles with the board's clock;
an unknown kind is a malformed reply. The cycle-counter arithmetic of the cortex_m firmware
(firmware/cycle_count.h) is compiled and checked here on the host."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from tvmc_micro.device import protocol as P
from tvmc_micro.device.counter import describe_counter, estimate_ms

REPO = Path(__file__).resolve().parents[2]


def test_info_with_and_without_timer_kind() -> None:
    old = P.parse_info(struct.pack("<BBHI", 1, 1, 12, 25_000_000))
    assert (old.timer_hz, old.timer_kind) == (25_000_000, P.TIMER_KIND_TIMER)
    new = P.parse_info(struct.pack("<BBHIB", 1, 1, 12, 80_000_000, 1))
    assert (new.num_ops, new.timer_hz, new.timer_kind) == (12, 80_000_000, P.TIMER_KIND_CORE_CYCLES)
    with pytest.raises(P.MalformedReply, match="unknown timer kind 7"):
        P.parse_info(struct.pack("<BBHIB", 1, 1, 12, 80_000_000, 7))
    with pytest.raises(P.MalformedReply, match="trailing"):
        P.parse_info(struct.pack("<BBHIBB", 1, 1, 12, 80_000_000, 1, 0))


def test_core_cycles_are_reported_as_cycles(tmp_path: Path) -> None:
    shutil.copy(REPO / "template_projects" / "cortex_m" / "boards.yaml", tmp_path / "boards.yaml")
    from microtvm_api.options import SAVED_OPTIONS_FILE

    (tmp_path / SAVED_OPTIONS_FILE).write_text(json.dumps({"board": "mps2_an386"}))
    c = describe_counter("cortex_m", tmp_path, {}, 25_000_000, P.TIMER_KIND_CORE_CYCLES)
    assert (c.unit, c.per_tick, c.exact, c.clock_hz) == ("cycles", 1.0, True, 25_000_000)
    assert "DWT CYCCNT" in c.basis
    assert estimate_ms(c, 25_000_000, None) == (1000.0, 25e6)
    # The same rate as a plain timer under QEMU -icount: instructions, 40 per tick.
    t = describe_counter("cortex_m", tmp_path, {}, 25_000_000, P.TIMER_KIND_TIMER)
    assert (t.unit, t.per_tick) == ("instructions", 40.0)
    z = describe_counter("zephyr", tmp_path, {}, 64_000_000, P.TIMER_KIND_CORE_CYCLES)
    assert (z.unit, z.clock_hz) == ("cycles", None)


CYCLE_TEST_C = r"""
#include <stdio.h>
#include "cycle_count.h"
static int failures;
static void expect(const char* what, uint64_t got, uint64_t want) {
  if (got != want) {
    printf("%s: got %llu want %llu\n", what, (unsigned long long)got, (unsigned long long)want);
    failures++;
  }
}
int main(void) {
  const uint64_t W = (uint64_t)1 << 32;
  /* A true count T seen as (estimate within 2^31 of T, T mod 2^32) comes back exactly. */
  const uint64_t truths[] = {0u, 5u, W - 1u, W, W + 7u, 3u * W + 123456u, 1000u * W - 1u};
  const int64_t errors[] = {0, 1, -1, 1000000, -1000000, 0x7FFFFFFF, -0x7FFFFFFF};
  for (unsigned i = 0; i < sizeof truths / sizeof truths[0]; ++i) {
    for (unsigned j = 0; j < sizeof errors / sizeof errors[0]; ++j) {
      if (errors[j] < 0 && truths[i] < (uint64_t)(-errors[j])) continue;
      uint64_t estimate = truths[i] + (uint64_t)errors[j];
      expect("extend", cycle_count_extend(estimate, (uint32_t)truths[i]), truths[i]);
    }
  }
  /* 25 MHz timer, 80 MHz core: 25,000,000 ticks are 80,000,000 cycles; a day of ticks does not overflow. */
  expect("estimate 1 s", cycle_count_estimate(25000000u, 25000000u, 80000000u), 80000000u);
  expect("estimate 7 ticks", cycle_count_estimate(7u, 25000000u, 80000000u), 22u);
  expect("estimate 1 day", cycle_count_estimate(86400ull * 25000000u, 25000000u, 80000000u),
         86400ull * 80000000u);
  printf("failures=%d\n", failures);
  return failures != 0;
}
"""


def test_cycle_count_extension_on_the_host(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    (tmp_path / "t.c").write_text(CYCLE_TEST_C)
    firmware = REPO / "template_projects" / "cortex_m" / "firmware"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsanitize=undefined",
            f"-I{firmware}",
            "t.c",
            "-o",
            "t",
        ],
        cwd=tmp_path,
        check=True,
    )
    r = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True)
    assert r.returncode == 0 and "failures=0" in r.stdout, r.stdout + r.stderr
