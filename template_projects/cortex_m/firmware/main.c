/*
 * The firmware of a cortex_m project: the device RPC server of runtime/ serving the project's model over
 * the board UART. All memory is static: the server, its frame buffers, and (in the generated glue) the
 * model's arena and I/O buffers.
 */
#include <stdint.h>

#include "board_config.h"
#include "drivers/timer.h"
#include "drivers/uart.h"
#include "tvmrt/model.h"
#include "tvmrt/platform.h"
#include "tvmrt/server.h"

/* Largest request and reply payloads; bigger means fewer round trips when moving tensors. */
#ifndef CORTEX_M_RX_BUFFER_BYTES
#define CORTEX_M_RX_BUFFER_BYTES 1024u
#endif
#ifndef CORTEX_M_TX_BUFFER_BYTES
#define CORTEX_M_TX_BUFFER_BYTES 1024u
#endif

static tvmrt_server_t g_server;
static uint8_t g_rx_buffer[CORTEX_M_RX_BUFFER_BYTES];
static uint8_t g_tx_buffer[CORTEX_M_TX_BUFFER_BYTES];

int main(void) {
  board_uart_init(BOARD_UART_BAUD);
  board_timer_start();

  /* The session nonce must differ between boots, but under QEMU -icount everything before the first
     host byte is deterministic. When that byte arrives (after how many polls) depends on the host, so
     waiting for it is this board's entropy source. */
  uint8_t chunk[64];
  size_t n = 0;
  uint32_t polls = 0;
  while ((n = board_uart_read_available(chunk, sizeof chunk)) == 0) {
    if ((++polls & 0x3FFFu) == 0u) {
      board_uart_poke();
    }
  }
  uint64_t now = board_timer_elapsed();

  tvmrt_server_config_t config = {
      .model = tvmrt_firmware_model(),
      .rx_buffer = g_rx_buffer,
      .rx_capacity = sizeof g_rx_buffer,
      .tx_buffer = g_tx_buffer,
      .tx_capacity = sizeof g_tx_buffer,
      .nonce_seed = (uint32_t)now ^ (uint32_t)(now >> 32) ^ (polls * 2654435761u),
  };
  if (tvmrt_server_init(&g_server, &config) != 0) {
    tvmrt_platform_abort(1);
  }
  tvmrt_server_announce(&g_server);
  for (;;) {
    if (n > 0) {
      tvmrt_server_feed(&g_server, chunk, n);
    }
    n = board_uart_read_available(chunk, sizeof chunk);
  }
}
