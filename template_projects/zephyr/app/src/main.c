/*
 * Firmware main loop: feed the bytes arriving on the console UART to the device RPC server; the server
 * answers through tvmrt_platform_write() (platform_zephyr.c). Nothing else writes to this UART.
 *
 * Receive path: uart_rx.c (interrupt-driven into a ring buffer where the driver supports it).
 */
#include <zephyr/device.h>
#include <zephyr/kernel.h>

#include "tvmrt/model.h"
#include "tvmrt/platform.h"
#include "tvmrt/server.h"
#include "tvmrt_zephyr.h"

#ifndef TVMC_RX_BUFFER_BYTES
#define TVMC_RX_BUFFER_BYTES 1024
#endif
#ifndef TVMC_TX_BUFFER_BYTES
#define TVMC_TX_BUFFER_BYTES 1024
#endif

const struct device* const tvmrt_zephyr_uart = DEVICE_DT_GET(DT_CHOSEN(zephyr_console));

static uint8_t rx_buffer[TVMC_RX_BUFFER_BYTES];
static uint8_t tx_buffer[TVMC_TX_BUFFER_BYTES];
static tvmrt_server_t server;
/* Survives a warm reset (not cleared at boot), so the nonce seed differs from one boot to the next. */
static __noinit uint32_t boot_count;

int main(void) {
  if (!device_is_ready(tvmrt_zephyr_uart)) {
    tvmrt_platform_abort(TVMC_ABORT_UART_NOT_READY);
  }
  boot_count++;
  const tvmrt_server_config_t config = {
      .model = tvmrt_firmware_model(),
      .rx_buffer = rx_buffer,
      .rx_capacity = sizeof(rx_buffer),
      .tx_buffer = tx_buffer,
      .tx_capacity = sizeof(tx_buffer),
      .nonce_seed = k_cycle_get_32() ^ (boot_count * 2654435761u),
  };
  if (tvmrt_server_init(&server, &config) != 0) {
    tvmrt_platform_abort(TVMC_ABORT_SERVER_INIT);
  }
  tvmc_zephyr_rx_start();
  tvmrt_server_announce(&server);
  for (;;) {
    uint8_t chunk[64];
    size_t n = tvmc_zephyr_receive(chunk, sizeof(chunk));
    tvmrt_server_feed(&server, chunk, n);
  }
  return 0;
}
