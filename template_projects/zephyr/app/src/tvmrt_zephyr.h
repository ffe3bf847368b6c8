/* What the mains, platform_zephyr.c and uart_rx.c share: the console UART, the firmware's abort codes and
   the receive path. */
#ifndef TVMRT_ZEPHYR_H_
#define TVMRT_ZEPHYR_H_

#include <stddef.h>
#include <stdint.h>
#include <zephyr/device.h>

/* The UART chosen as zephyr,console, dedicated to the RPC protocol. */
extern const struct device* const tvmrt_zephyr_uart;

/* Codes passed to tvmrt_platform_abort() by the Zephyr glue (the runtime uses its own, all below 100). */
#define TVMC_ABORT_UART_NOT_READY 101
#define TVMC_ABORT_UART_IRQ 102
#define TVMC_ABORT_SERVER_INIT 103

/* uart_rx.c: start receiving on the console UART (call once, after the UART is ready), then block until
   bytes have arrived and copy at most `cap` of them to `out` (returns how many, at least 1). */
void tvmc_zephyr_rx_start(void);
size_t tvmc_zephyr_receive(uint8_t* out, size_t cap);

#endif /* TVMRT_ZEPHYR_H_ */
