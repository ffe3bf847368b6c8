/* Per-operator timing driven by the executor's TVMGEN_OP_HOOK calls (see profiler.h). */
#include "tvmrt/profiler.h"

#include <stddef.h>

#include "tvmrt/platform.h"

/* The hook carries no context, so the one active profile lives here (one model per firmware). */
static struct {
  uint64_t* ticks;
  uint32_t num_ops;
  uint32_t next_index; /* the boundary expected next; a mismatch marks the profile invalid */
  uint64_t last;
  uint64_t first;
  int active;
  int in_order;
} g_profile;

void tvmrt_profiler_begin(uint64_t* ticks, uint32_t num_ops) {
  uint32_t i;
  for (i = 0; i < num_ops; ++i) {
    ticks[i] = 0;
  }
  g_profile.ticks = ticks;
  g_profile.num_ops = num_ops;
  g_profile.next_index = 0;
  g_profile.last = 0;
  g_profile.first = 0;
  g_profile.in_order = 1;
  g_profile.active = 1;
  tvmrt_platform_timer_start();
}

void tvmrt_profiler_hook(uint32_t index) {
  uint64_t now;
  if (!g_profile.active) {
    return;
  }
  now = tvmrt_platform_timer_elapsed();
  if (index != g_profile.next_index || index > g_profile.num_ops) {
    g_profile.in_order = 0;
  } else if (index == 0u) {
    g_profile.first = now;
  } else {
    g_profile.ticks[index - 1u] = now - g_profile.last;
  }
  g_profile.last = now;
  g_profile.next_index = index + 1u;
}

int tvmrt_profiler_end(uint64_t* total_ticks) {
  int complete = g_profile.active && g_profile.in_order && g_profile.next_index == g_profile.num_ops + 1u;
  g_profile.active = 0;
  if (total_ticks != NULL) {
    *total_ticks = complete ? g_profile.last - g_profile.first : 0u;
  }
  return complete;
}
