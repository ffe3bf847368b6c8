/* The polled UART every board driver (drivers/uart_<type>.c) provides; the base address and input clock
   come from board_config.h. Polled on purpose: the firmware has nothing else to do while it waits. */
#ifndef CORTEX_M_UART_H_
#define CORTEX_M_UART_H_

#include <stddef.h>
#include <stdint.h>

void board_uart_init(uint32_t baud);
/* Blocks until every byte is in the transmitter. */
void board_uart_write(const uint8_t* data, size_t len);
/* Copies up to `cap` bytes already received, without waiting; returns how many. */
size_t board_uart_read_available(uint8_t* out, size_t cap);
/* Reads the (empty) data register. Harmless on hardware; under QEMU it makes the UART ask its chardev
   for input, which is when QEMU's pty backend notices a newly opened host side (otherwise it polls for
   that once a second), so a session can start without that second of delay. */
void board_uart_poke(void);

#endif /* CORTEX_M_UART_H_ */
