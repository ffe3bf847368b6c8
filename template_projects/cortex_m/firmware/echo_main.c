/*
 * Board bring-up firmware (no model, no runtime): proves a board's UART, timer and semihosting before
 * anything bigger runs on it. Protocol over the UART, one request byte at a time:
 *   'e' <n> <n bytes>  -> the same n bytes back (n = 1..255)
 *   't'                -> "T <ticks> <hz>\n": timer ticks spent in a loop of exactly 2,000,000 instructions
 *   'x' <code>         -> exits QEMU with status <code> through semihosting
 *   'a' <code>         -> tvmrt_platform_abort(code): the platform layer's abort path
 *   'f'                -> executes an undefined instruction: the fault handler's path
 *   anything else      -> "?\n"
 */
#include <stdint.h>

#include "board_config.h"
#include "semihosting.h"
#include "drivers/timer.h"
#include "drivers/uart.h"
#include "tvmrt/platform.h"

static uint8_t read_byte(void) {
  /* The poke (a dummy data-register read) makes QEMU notice the pty reader at once, but a byte arriving
     between the empty check and that read would be consumed and lost: poke only until the host has sent
     its first byte, as main.c does. */
  static int host_seen = 0;
  uint8_t b;
  uint32_t polls = 0;
  while (board_uart_read_available(&b, 1) == 0) {
    if (!host_seen && (++polls & 0x3FFFu) == 0u) {
      board_uart_poke();
    }
  }
  host_seen = 1;
  return b;
}

static void write_text(const char* text) {
  size_t n = 0;
  while (text[n] != '\0') {
    n++;
  }
  board_uart_write((const uint8_t*)text, n);
}

/* 1,000,000 iterations of SUBS + BNE: 2,000,000 instructions whatever the compiler flags are. */
static void calibrated_loop(void) {
  uint32_t count = 1000000u;
  __asm volatile("1: subs %0, %0, #1\n\t bne 1b" : "+r"(count) : : "cc");
}

static void utoa_dec(uint64_t value, char* out) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + (int)(value % 10u));
    value /= 10u;
  } while (value != 0u);
  while (n > 0) {
    *out++ = tmp[--n];
  }
  *out = '\0';
}

int main(void) {
  board_uart_init(BOARD_UART_BAUD);
  board_timer_start();
  uint8_t buf[256];
  for (;;) {
    uint8_t cmd = read_byte();
    if (cmd == 'e') {
      uint8_t n = read_byte();
      for (uint32_t i = 0; i < n; ++i) {
        buf[i] = read_byte();
      }
      board_uart_write(buf, n);
    } else if (cmd == 't') {
      board_timer_start();
      uint64_t t0 = board_timer_elapsed();
      calibrated_loop();
      uint64_t t1 = board_timer_elapsed();
      char text[64] = "T ";
      utoa_dec(t1 - t0, text + 2);
      write_text(text);
      write_text(" ");
      utoa_dec(BOARD_TIMER_CLOCK_HZ, text);
      write_text(text);
      write_text("\n");
    } else if (cmd == 'x') {
      semihosting_exit(read_byte());
    } else if (cmd == 'a') {
      tvmrt_platform_abort((int32_t)read_byte());
    } else if (cmd == 'f') {
      __asm volatile("udf #0");
    } else {
      write_text("?\n");
    }
  }
}
