/*
 * Firmware main of project_type standalone: runs the model once at boot on the input built into the image
 * (src/standalone_input.c) and prints the outputs and the run's cycle count on the console UART
 * (src/apps/tvmc_standalone.c, the same code as the cortex_m template's), then idles.
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
  (void)tvmc_standalone_run();
  return 0;
}
