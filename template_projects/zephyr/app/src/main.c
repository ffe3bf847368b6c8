/*
 * Firmware main loop: feed the bytes arriving on the console UART to the device RPC server; the server
 * answers through tvmrt_platform_write() (platform_zephyr.c). Nothing else writes to this UART.
 *
 * Receive path: interrupt-driven into a ring buffer where the UART driver supports it (real boards and
 * QEMU: a byte arriving while the server is busy must not be lost), else polled (native_sim's pty UART
 * has no interrupt API).
 */
#include <zephyr/device.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/kernel.h>
#include <zephyr/sys/ring_buffer.h>

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
#ifndef TVMC_RX_RING_BYTES
#define TVMC_RX_RING_BYTES 2048
#endif

const struct device* const tvmrt_zephyr_uart = DEVICE_DT_GET(DT_CHOSEN(zephyr_console));

static uint8_t rx_buffer[TVMC_RX_BUFFER_BYTES];
static uint8_t tx_buffer[TVMC_TX_BUFFER_BYTES];
static tvmrt_server_t server;
/* Survives a warm reset (not cleared at boot), so the nonce seed differs from one boot to the next. */
static __noinit uint32_t boot_count;

#ifdef CONFIG_UART_INTERRUPT_DRIVEN
RING_BUF_DECLARE(rx_ring, TVMC_RX_RING_BYTES);
static K_SEM_DEFINE(rx_ready, 0, 1);

static void uart_isr(const struct device* dev, void* user_data) {
  ARG_UNUSED(user_data);
  /* Drain RX only. Not a loop on uart_irq_is_pending(): some drivers (CMSDK) report an idle, empty TX
   * buffer as pending, which would spin here forever. */
  if (!uart_irq_update(dev) || !uart_irq_rx_ready(dev)) {
    return;
  }
  uint8_t chunk[32];
  int n;
  while ((n = uart_fifo_read(dev, chunk, sizeof(chunk))) > 0) {
    /* On overflow the excess is dropped: the frame's CRC fails and the host retries it. */
    (void)ring_buf_put(&rx_ring, chunk, (uint32_t)n);
  }
  k_sem_give(&rx_ready);
}

static size_t receive(uint8_t* out, size_t cap) {
  for (;;) {
    unsigned int key = irq_lock();
    uint32_t n = ring_buf_get(&rx_ring, out, (uint32_t)cap);
    irq_unlock(key);
    if (n > 0) {
      return n;
    }
    k_sem_take(&rx_ready, K_FOREVER);
  }
}

static void start_receiving(void) {
  if (uart_irq_callback_user_data_set(tvmrt_zephyr_uart, uart_isr, NULL) != 0) {
    tvmrt_platform_abort(TVMC_ABORT_UART_IRQ);
  }
  uart_irq_rx_enable(tvmrt_zephyr_uart);
  /* A byte that arrived before the interrupt was enabled raises no interrupt on some UARTs (CMSDK, as
   * QEMU models it, then stops accepting input): drain it now, as the ISR would. */
  unsigned int key = irq_lock();
  uart_isr(tvmrt_zephyr_uart, NULL);
  irq_unlock(key);
}
#else
static size_t receive(uint8_t* out, size_t cap) {
  for (;;) {
    size_t n = 0;
    while (n < cap && uart_poll_in(tvmrt_zephyr_uart, &out[n]) == 0) {
      n++;
    }
    if (n > 0) {
      return n;
    }
    /* Idle: let simulated time advance (native_sim) and the CPU sleep between polls. */
    k_sleep(K_USEC(100));
  }
}

static void start_receiving(void) {}
#endif

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
  start_receiving();
  tvmrt_server_announce(&server);
  for (;;) {
    uint8_t chunk[64];
    size_t n = receive(chunk, sizeof(chunk));
    tvmrt_server_feed(&server, chunk, n);
  }
  return 0;
}
