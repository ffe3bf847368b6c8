/* ARM PL011 UART (the Stellaris UART is a PL011 variant), polled, FIFOs off (see board_uart_init).
   On real LM3S silicon the UART and GPIO clocks must also be enabled in SYSCTL; QEMU does not need it. */
#include <stdint.h>

#include "board_config.h"
#include "uart.h"

#define UART_DR (*(volatile uint32_t*)(BOARD_UART_BASE + 0x000u))
#define UART_FR (*(volatile uint32_t*)(BOARD_UART_BASE + 0x018u))
#define UART_IBRD (*(volatile uint32_t*)(BOARD_UART_BASE + 0x024u))
#define UART_FBRD (*(volatile uint32_t*)(BOARD_UART_BASE + 0x028u))
#define UART_LCRH (*(volatile uint32_t*)(BOARD_UART_BASE + 0x02Cu))
#define UART_CTL (*(volatile uint32_t*)(BOARD_UART_BASE + 0x030u))

#define FR_RXFE 0x10u
#define FR_TXFF 0x20u
#define LCRH_WLEN8 0x60u
#define CTL_UARTEN 0x001u
#define CTL_TXE 0x100u
#define CTL_RXE 0x200u

void board_uart_init(uint32_t baud) {
  UART_CTL = 0u;
  /* Divisor = clock / (16 * baud) in 16.6 fixed point. */
  uint32_t div64 = (uint32_t)(((uint64_t)BOARD_UART_CLOCK_HZ * 4u + baud / 2u) / baud);
  UART_IBRD = div64 >> 6;
  UART_FBRD = div64 & 0x3Fu;
  /* FIFOs stay off: on a PL011 (and QEMU's model of it) switching FEN resets the receive FIFO, which
     drops whatever the host sent before this line ran, e.g. the first bytes of a request typed while the
     board boots. Polled reads keep up with the 1-byte holding register (QEMU flow-controls the pty). */
  UART_LCRH = LCRH_WLEN8;
  UART_CTL = CTL_UARTEN | CTL_TXE | CTL_RXE;
}

void board_uart_write(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    while (UART_FR & FR_TXFF) {
    }
    UART_DR = data[i];
  }
}

size_t board_uart_read_available(uint8_t* out, size_t cap) {
  size_t n = 0;
  while (n < cap && !(UART_FR & FR_RXFE)) {
    out[n++] = (uint8_t)UART_DR;
  }
  return n;
}

void board_uart_poke(void) { (void)UART_DR; }
