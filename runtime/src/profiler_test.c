/* profiler.c: per-operator ticks from the op hooks, and detection of missing or out-of-order hooks. */
#include "tvmrt/profiler.h"

#include "../test/testutil.h"

int main(void) {
  uint64_t ticks[3] = {99, 99, 99};
  uint64_t total = 1;
  uint32_t i;

  /* Hooks 0..3 around three operators: each elapsed() read advances the fake timer by 7 ticks. */
  tvmrt_profiler_begin(ticks, 3);
  CHECK(ticks[0] == 0 && ticks[1] == 0 && ticks[2] == 0, "begin clears the ticks");
  for (i = 0; i <= 3; ++i) tvmrt_profiler_hook(i);
  CHECK(tvmrt_profiler_end(&total) == 1, "a complete profile is valid");
  CHECK(ticks[0] == TU_TICKS_PER_READ && ticks[1] == TU_TICKS_PER_READ && ticks[2] == TU_TICKS_PER_READ,
        "each operator took one timer step, got %lu %lu %lu", (unsigned long)ticks[0],
        (unsigned long)ticks[1], (unsigned long)ticks[2]);
  CHECK(total == 3u * TU_TICKS_PER_READ, "total %lu", (unsigned long)total);

  /* No hooks at all (executor built without TVMGEN_PROFILE). */
  tvmrt_profiler_begin(ticks, 3);
  CHECK(tvmrt_profiler_end(&total) == 0 && total == 0, "a run without hooks has no profile");

  /* A skipped boundary. */
  tvmrt_profiler_begin(ticks, 3);
  tvmrt_profiler_hook(0);
  tvmrt_profiler_hook(2);
  tvmrt_profiler_hook(3);
  CHECK(tvmrt_profiler_end(&total) == 0, "out-of-order hooks invalidate the profile");

  /* An index beyond the operator count never writes past ticks[]. */
  ticks[1] = 12345;
  tvmrt_profiler_begin(ticks, 1);
  tvmrt_profiler_hook(0);
  tvmrt_profiler_hook(1);
  tvmrt_profiler_hook(2);
  CHECK(tvmrt_profiler_end(&total) == 0, "an extra boundary invalidates the profile");
  CHECK(ticks[1] == 12345, "ticks[1] untouched by a 1-op profile");

  /* Hooks outside a profile (ordinary runs of a profiling build) are ignored. */
  tvmrt_profiler_hook(0);
  tvmrt_profiler_hook(1);
  CHECK(tvmrt_profiler_end(&total) == 0, "no profile was active");

  /* Zero operators: boundary 0 alone is complete. */
  tvmrt_profiler_begin(ticks, 0);
  tvmrt_profiler_hook(0);
  CHECK(tvmrt_profiler_end(&total) == 1 && total == 0, "a 0-op profile is valid");
  return tu_finish("profiler_test");
}
