/*
 * The runtime's porting layer (runtime/include/tvmrt/platform.h) for the cortex_m boards: writes go to
 * the board UART, time comes from the board timer, abort and log use semihosting (QEMU's exit status and
 * console), so a crashed firmware is visible from the host rather than silent.
 */
#include <stdint.h>

#include "board_config.h"
#include "cycle_count.h"
#include "drivers/timer.h"
#include "drivers/uart.h"
#include "semihosting.h"
#include "tvmrt/platform.h"

void tvmrt_platform_write(const uint8_t* data, size_t len) { board_uart_write(data, len); }

/* Timing: the core's cycle counter (DWT CYCCNT) when the core has one that counts, found at run time,
   else the board timer. QEMU implements no DWT (its registers read 0 and CYCCNT never counts), so under
   QEMU this always falls back to the board timer, whose ticks the host reads as instructions under
   -icount; the host learns which from INFO's timer_kind (docs/timing.md). */
#if BOARD_HAS_DWT
#define DEMCR (*(volatile uint32_t*)0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL (*(volatile uint32_t*)0xE0001000u)
#define DWT_CTRL_CYCCNTENA 1u
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DWT_CYCCNT (*(volatile uint32_t*)0xE0001004u)

static int g_cyccnt_counts = -1; /* -1: not probed yet */
static uint32_t g_cyccnt_start;

static int cyccnt_counts(void) {
  if (g_cyccnt_counts < 0) {
    g_cyccnt_counts = 0;
    DEMCR |= DEMCR_TRCENA;
    if ((DWT_CTRL & DWT_CTRL_NOCYCCNT) == 0u) {
      DWT_CYCCNT = 0u;
      DWT_CTRL |= DWT_CTRL_CYCCNTENA;
      uint32_t first = DWT_CYCCNT;
      for (volatile int i = 0; i < 8; ++i) {
      }
      g_cyccnt_counts = DWT_CYCCNT != first;
    }
  }
  return g_cyccnt_counts;
}

void tvmrt_platform_timer_start(void) {
  if (cyccnt_counts()) { /* probed before the board timer starts: the probe is never inside a count */
    g_cyccnt_start = DWT_CYCCNT;
  }
  board_timer_start();
}

uint64_t tvmrt_platform_timer_elapsed(void) {
  uint64_t ticks = board_timer_elapsed();
  if (!cyccnt_counts()) {
    return ticks;
  }
  uint32_t low = DWT_CYCCNT - g_cyccnt_start;
  return cycle_count_extend(cycle_count_estimate(ticks, BOARD_TIMER_CLOCK_HZ, BOARD_CORE_CLOCK_HZ), low);
}

uint32_t tvmrt_platform_timer_hz(void) { return cyccnt_counts() ? BOARD_CORE_CLOCK_HZ : BOARD_TIMER_CLOCK_HZ; }

uint8_t tvmrt_platform_timer_kind(void) {
  return cyccnt_counts() ? TVMRT_TIMER_KIND_CORE_CYCLES : TVMRT_TIMER_KIND_TIMER;
}
#else
void tvmrt_platform_timer_start(void) { board_timer_start(); }

uint64_t tvmrt_platform_timer_elapsed(void) { return board_timer_elapsed(); }

uint32_t tvmrt_platform_timer_hz(void) { return BOARD_TIMER_CLOCK_HZ; }
#endif

static void format_i32(int32_t value, char* out) {
  char tmp[12];
  int n = 0;
  uint32_t magnitude = value < 0 ? (uint32_t)0 - (uint32_t)value : (uint32_t)value;
  do {
    tmp[n++] = (char)('0' + (int)(magnitude % 10u));
    magnitude /= 10u;
  } while (magnitude != 0u);
  if (value < 0) {
    *out++ = '-';
  }
  while (n > 0) {
    *out++ = tmp[--n];
  }
  *out = '\0';
}

/* QEMU exits with status 100 + (code & 0x3F) (170 and up are startup.c's unexpected interrupts); the full
   code is on QEMU's console (the transport's log). */
void tvmrt_platform_abort(int32_t code) {
  char text[16];
  format_i32(code, text);
  semihosting_write0("tvmrt: firmware abort, code ");
  semihosting_write0(text);
  semihosting_write0("\n");
  semihosting_exit(100 + (int)((uint32_t)code & 0x3Fu));
  for (;;) {
  }
}

void tvmrt_platform_log(const char* msg) {
  semihosting_write0(msg);
  semihosting_write0("\n");
}
