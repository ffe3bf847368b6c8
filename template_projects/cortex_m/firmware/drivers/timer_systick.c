/* The Cortex-M SysTick on the processor clock: a 24-bit down-counter, extended to 64 bits by counting
   its wrap exceptions. Used where the board's own timers cannot be read back in QEMU (Stellaris GPTM). */
#include <stdint.h>

#include "board_config.h"
#include "timer.h"

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t*)0xE000ED04u)

#define CSR_ENABLE 0x1u
#define CSR_TICKINT 0x2u
#define CSR_CLKSOURCE_CPU 0x4u
#define ICSR_PENDSTSET (1u << 26)
#define ICSR_PENDSTCLR (1u << 25)
#define SYSTICK_MAX 0x00FFFFFFu

static volatile uint32_t g_wraps;

void SysTick_Handler(void) { g_wraps++; }

void board_timer_start(void) {
  SYST_CSR = 0u;
  SCB_ICSR = ICSR_PENDSTCLR;
  g_wraps = 0u;
  SYST_RVR = SYSTICK_MAX;
  SYST_CVR = 0u; /* any write clears the counter; it reloads from RVR on the next tick */
  SYST_CSR = CSR_ENABLE | CSR_TICKINT | CSR_CLKSOURCE_CPU;
  /* Start counting at the reload, so that elapsed = wraps * period + (RVR - value) holds from here. */
  while ((SYST_CVR & SYSTICK_MAX) == 0u) {
  }
}

uint64_t board_timer_elapsed(void) {
  uint32_t wraps;
  uint32_t value;
  uint32_t pending;
  do {
    wraps = g_wraps;
    value = SYST_CVR & SYSTICK_MAX;
    pending = SCB_ICSR & ICSR_PENDSTSET;
  } while (wraps != g_wraps);
  /* The exception fires when the counter reaches 0, one tick before the period ends: */
  if (pending && value > (SYSTICK_MAX / 2u)) {
    wraps++; /* reloaded, exception not taken yet */
  } else if (!pending && value == 0u && wraps > 0u) {
    wraps--; /* exception taken, but this period still has its last tick to run */
  }
  return (uint64_t)wraps * (SYSTICK_MAX + 1u) + (uint64_t)(SYSTICK_MAX - value);
}
