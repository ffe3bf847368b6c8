/*
 * The firmware of a cortex_m project of project_type standalone: no host session. At boot it runs the
 * model once on the input built into the image (generated/standalone_input.c) and prints the outputs and
 * the run's timer ticks over the board UART (apps/tvmc_standalone.c), then sleeps.
 */
#include <stdint.h>

#include "board_config.h"
#include "drivers/timer.h"
#include "drivers/uart.h"
#include "tvmc_app.h"

int main(void) {
  board_uart_init(BOARD_UART_BAUD);
  board_timer_start();
  (void)tvmc_standalone_run();
  for (;;) {
    __asm volatile("wfi");
  }
}
