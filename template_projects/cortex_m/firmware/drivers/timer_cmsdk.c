/* ARM CMSDK APB timer (TIMER0 on MPS2): a 32-bit down-counter reloaded from RELOAD when it reaches 0,
   with an interrupt at each wrap that extends the count to 64 bits. */
#include <stdint.h>

#include "board_config.h"
#include "timer.h"

#define TIMER_CTRL (*(volatile uint32_t*)(BOARD_TIMER_BASE + 0x00u))
#define TIMER_VALUE (*(volatile uint32_t*)(BOARD_TIMER_BASE + 0x04u))
#define TIMER_RELOAD (*(volatile uint32_t*)(BOARD_TIMER_BASE + 0x08u))
#define TIMER_INT (*(volatile uint32_t*)(BOARD_TIMER_BASE + 0x0Cu))

#define CTRL_ENABLE 0x1u
#define CTRL_IRQ_ENABLE 0x8u

#define NVIC_ISER0 (*(volatile uint32_t*)0xE000E100u)

static volatile uint32_t g_wraps;

void Timer_IRQHandler(void) {
  TIMER_INT = 1u; /* write-one-to-clear */
  g_wraps++;
}

void board_timer_start(void) {
  TIMER_CTRL = 0u;
  TIMER_INT = 1u;
  g_wraps = 0u;
  TIMER_RELOAD = 0xFFFFFFFFu;
  TIMER_VALUE = 0xFFFFFFFFu;
  NVIC_ISER0 = 1u << BOARD_TIMER_IRQ;
  TIMER_CTRL = CTRL_ENABLE | CTRL_IRQ_ENABLE;
}

uint64_t board_timer_elapsed(void) {
  uint32_t wraps;
  uint32_t value;
  uint32_t pending;
  do {
    wraps = g_wraps;
    value = TIMER_VALUE;
    pending = TIMER_INT & 1u;
  } while (wraps != g_wraps);
  /* A wrap the handler has not counted yet shows as a pending interrupt with a freshly reloaded value. */
  if (pending && value > 0x80000000u) {
    wraps++;
  }
  return ((uint64_t)wraps << 32) | (uint64_t)(0xFFFFFFFFu - value);
}
