/*
 * Host (POSIX) defaults for the porting layer: the transport is stdout, the timer is CLOCK_MONOTONIC
 * in nanoseconds, abort exits the process, and the local log goes to stderr (never stdout, which
 * carries the protocol).
 *
 * Only a hosted POSIX build compiles it: an IDE that builds every .c of a Model Library Format archive
 * for a microcontroller gets an empty object here instead of errors about CLOCK_MONOTONIC and write().
 */
#if defined(__unix__) || defined(__unix) || defined(__APPLE__)
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tvmrt/platform.h"

static uint64_t g_timer_start_ns;

static uint64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tvmrt_platform_write(const uint8_t* data, size_t len) {
  while (len > 0u) {
    ssize_t n = write(STDOUT_FILENO, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      /* The host closed its end: nobody is listening any more, so stop quietly. */
      fprintf(stderr, "tvmrt: transport write failed (errno %d); exiting\n", errno);
      _exit(3);
    }
    data += n;
    len -= (size_t)n;
  }
}

void tvmrt_platform_timer_start(void) { g_timer_start_ns = monotonic_ns(); }

uint64_t tvmrt_platform_timer_elapsed(void) { return monotonic_ns() - g_timer_start_ns; }

uint32_t tvmrt_platform_timer_hz(void) { return 1000000000u; }

void tvmrt_platform_abort(int32_t code) {
  fprintf(stderr, "tvmrt: abort (code %ld)\n", (long)code);
  _exit(code == 0 ? 70 : (int)(code & 0x7F));
}

void tvmrt_platform_log(const char* msg) { fprintf(stderr, "tvmrt: %s\n", msg); }

#else
/* Not a POSIX host: a board provides tvmrt_platform_* itself (runtime/README.md). ISO C wants a
   declaration in every translation unit. */
typedef int tvmrt_platform_host_not_built;
#endif
