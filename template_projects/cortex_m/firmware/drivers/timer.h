/* The free-running timer every board driver (drivers/timer_<type>.c) provides. It counts up from
   board_timer_start() in ticks of BOARD_TIMER_CLOCK_HZ, extended to 64 bits by counting wrap interrupts. */
#ifndef CORTEX_M_TIMER_H_
#define CORTEX_M_TIMER_H_

#include <stdint.h>

void board_timer_start(void);
uint64_t board_timer_elapsed(void);

#endif /* CORTEX_M_TIMER_H_ */
