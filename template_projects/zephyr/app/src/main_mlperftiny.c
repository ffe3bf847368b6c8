/*
 * Firmware main of project_type mlperftiny: the MLPerf Tiny / EEMBC EnergyRunner device API
 * (src/apps/tvmc_mlperftiny.c, the same code as the cortex_m template's) on the console UART. Bytes are
 * received as host_driven's are (uart_rx.c: interrupt-driven where the driver supports it), so none is
 * lost while a command runs or between two reads.
 */
#include <zephyr/device.h>
#include <zephyr/kernel.h>

#include "tvmc_app.h"
#include "tvmrt/platform.h"
#include "tvmrt_zephyr.h"

const struct device* const tvmrt_zephyr_uart = DEVICE_DT_GET(DT_CHOSEN(zephyr_console));

int main(void) {
  if (!device_is_ready(tvmrt_zephyr_uart)) {
    tvmrt_platform_abort(TVMC_ABORT_UART_NOT_READY);
  }
  tvmc_zephyr_rx_start();
  tvmc_mlperf_init();
  for (;;) {
    uint8_t chunk[64];
    size_t n = tvmc_zephyr_receive(chunk, sizeof(chunk));
    for (size_t i = 0; i < n; i++) {
      tvmc_mlperf_feed((char)chunk[i]);
    }
  }
  return 0;
}
