/*
 * Firmware main of project_type mlperftiny: the MLPerf Tiny / EEMBC EnergyRunner device API
 * (src/apps/tvmc_mlperftiny.c, the same code as the cortex_m template's) on the console UART. Polled:
 * the runner sends a command only after the previous one's m-ready, so no byte arrives mid-inference.
 */
#include <zephyr/device.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/kernel.h>

#include "tvmc_app.h"
#include "tvmrt/platform.h"
#include "tvmrt_zephyr.h"

const struct device* const tvmrt_zephyr_uart = DEVICE_DT_GET(DT_CHOSEN(zephyr_console));

int main(void) {
  if (!device_is_ready(tvmrt_zephyr_uart)) {
    tvmrt_platform_abort(TVMC_ABORT_UART_NOT_READY);
  }
  tvmc_mlperf_init();
  for (;;) {
    unsigned char c;
    if (uart_poll_in(tvmrt_zephyr_uart, &c) == 0) {
      tvmc_mlperf_feed((char)c);
    } else {
      k_sleep(K_USEC(100));
    }
  }
  return 0;
}
