/*
 * The runtime's porting layer (runtime/include/tvmrt/platform.h) for the cortex_m boards: writes go to
 * the board UART, time comes from the board timer, abort and log use semihosting (QEMU's exit status and
 * console), so a crashed firmware is visible from the host rather than silent.
 */
#include <stdint.h>

#include "board_config.h"
#include "drivers/timer.h"
#include "drivers/uart.h"
#include "semihosting.h"
#include "tvmrt/platform.h"

void tvmrt_platform_write(const uint8_t* data, size_t len) { board_uart_write(data, len); }

void tvmrt_platform_timer_start(void) { board_timer_start(); }

uint64_t tvmrt_platform_timer_elapsed(void) { return board_timer_elapsed(); }

uint32_t tvmrt_platform_timer_hz(void) { return BOARD_TIMER_CLOCK_HZ; }

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
