/*
 * The firmware of a cortex_m project of project_type mlperftiny: the MLPerf Tiny / EEMBC EnergyRunner
 * device API (apps/tvmc_mlperftiny.c) over the board UART, fed one received character at a time.
 */
#include <stddef.h>
#include <stdint.h>

#include "board_config.h"
#include "drivers/uart.h"
#include "tvmc_app.h"

int main(void) {
  board_uart_init(BOARD_UART_BAUD);
  tvmc_mlperf_init();
  uint32_t polls = 0;
  int heard = 0;
  for (;;) {
    uint8_t chunk[64];
    size_t n = board_uart_read_available(chunk, sizeof chunk);
    if (n == 0) {
      /* Under QEMU reading the data register is what makes the pty backend notice a new reader. Only
         until the host has spoken: a poke reads (and so drops) a byte that arrives just after the check
         above, which would garble a command; once bytes flow, the backend has noticed its reader. */
      if (!heard && (++polls & 0x3FFFu) == 0u) {
        board_uart_poke();
      }
      continue;
    }
    heard = 1;
    for (size_t i = 0; i < n; ++i) {
      tvmc_mlperf_feed((char)chunk[i]);
    }
  }
}
