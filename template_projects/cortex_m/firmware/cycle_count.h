/* Extending the core's 32-bit cycle counter (DWT CYCCNT) to 64 bits with the board timer. CYCCNT wraps
   every 2^32 cycles (54 s at 80 MHz); the board timer is 64-bit but coarser. The count is the value whose
   low 32 bits are CYCCNT's and which is nearest the board timer's estimate: exact while the estimate is
   within 2^31 cycles of the truth (any timer within 25% of its nominal rate, for runs up to days). */
#ifndef CORTEX_M_CYCLE_COUNT_H_
#define CORTEX_M_CYCLE_COUNT_H_

#include <stdint.h>

/* Cycles in `ticks` of a timer at timer_hz for a core at core_hz, without overflowing 64 bits. */
static inline uint64_t cycle_count_estimate(uint64_t ticks, uint32_t timer_hz, uint32_t core_hz) {
  return ticks / timer_hz * core_hz + (ticks % timer_hz) * core_hz / timer_hz;
}

/* The 64-bit count congruent to `low` modulo 2^32 that is nearest `estimate`. */
static inline uint64_t cycle_count_extend(uint64_t estimate, uint32_t low) {
  const uint64_t wrap = (uint64_t)1 << 32;
  const uint64_t half = wrap >> 1;
  uint64_t value = (estimate & ~(wrap - 1u)) | low;
  if (value + half < estimate) {
    value += wrap;
  } else if (value > estimate + half && value >= wrap) {
    value -= wrap;
  }
  return value;
}

#endif /* CORTEX_M_CYCLE_COUNT_H_ */
