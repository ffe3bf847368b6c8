/* A deterministic platform for unit tests: writes are captured, the timer advances per read. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tvmrt/platform.h"

uint8_t tu_written[1 << 16];
size_t tu_written_len = 0;
unsigned tu_timer_starts = 0;
static uint64_t g_now = 0;

void tu_clear_written(void) { tu_written_len = 0; }

void tvmrt_platform_write(const uint8_t* data, size_t len) {
  if (tu_written_len + len > sizeof(tu_written)) {
    fprintf(stderr, "fake platform: capture buffer overflow\n");
    exit(2);
  }
  memcpy(tu_written + tu_written_len, data, len);
  tu_written_len += len;
}

void tvmrt_platform_timer_start(void) {
  g_now = 0;
  tu_timer_starts++;
}

uint64_t tvmrt_platform_timer_elapsed(void) {
  g_now += TU_TICKS_PER_READ;
  return g_now;
}

uint32_t tvmrt_platform_timer_hz(void) { return TU_TIMER_HZ; }

void tvmrt_platform_abort(int32_t code) {
  fprintf(stderr, "fake platform: abort %ld\n", (long)code);
  exit(3);
}
