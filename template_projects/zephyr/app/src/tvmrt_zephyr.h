/* What main.c and platform_zephyr.c share: the transport UART and the firmware's abort codes. */
#ifndef TVMRT_ZEPHYR_H_
#define TVMRT_ZEPHYR_H_

#include <zephyr/device.h>

/* The UART chosen as zephyr,console, dedicated to the RPC protocol. */
extern const struct device* const tvmrt_zephyr_uart;

/* Codes passed to tvmrt_platform_abort() by the Zephyr glue (the runtime uses its own, all below 100). */
#define TVMC_ABORT_UART_NOT_READY 101
#define TVMC_ABORT_UART_IRQ 102
#define TVMC_ABORT_SERVER_INIT 103

#endif /* TVMRT_ZEPHYR_H_ */
