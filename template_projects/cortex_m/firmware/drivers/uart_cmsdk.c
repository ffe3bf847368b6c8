/* ARM CMSDK APB UART (MPS2 boards): one-byte TX and RX buffers, polled. */
#include <stdint.h>

#include "board_config.h"
#include "uart.h"

#define UART_DATA (*(volatile uint32_t*)(BOARD_UART_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t*)(BOARD_UART_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t*)(BOARD_UART_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t*)(BOARD_UART_BASE + 0x10u))

#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u
#define CTRL_TX_EN 0x1u
#define CTRL_RX_EN 0x2u

void board_uart_init(uint32_t baud) {
  uint32_t div = BOARD_UART_CLOCK_HZ / baud;
  UART_BAUDDIV = div < 16u ? 16u : div; /* the CMSDK UART's minimum divider is 16 */
  UART_CTRL = CTRL_TX_EN | CTRL_RX_EN;
}

void board_uart_write(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = data[i];
  }
}

size_t board_uart_read_available(uint8_t* out, size_t cap) {
  size_t n = 0;
  while (n < cap && (UART_STATE & STATE_RX_FULL)) {
    out[n++] = (uint8_t)UART_DATA;
  }
  return n;
}

void board_uart_poke(void) { (void)UART_DATA; }
