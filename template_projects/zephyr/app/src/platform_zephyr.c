/*
 * The runtime's porting layer (tvmrt/platform.h) on Zephyr: UART polling output, a cycle-counter timer,
 * and abort. Replaces runtime/platform/host/, which is not compiled into Zephyr projects.
 */
#include <zephyr/drivers/uart.h>
#include <zephyr/kernel.h>

#include "tvmrt/platform.h"
#include "tvmrt_zephyr.h"

#if defined(CONFIG_ARCH_POSIX)
#include <posix_board_if.h>

#include "native_rtc.h"
#endif

void tvmrt_platform_write(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; i++) {
    uart_poll_out(tvmrt_zephyr_uart, data[i]);
  }
}

#if defined(CONFIG_ARCH_POSIX)
/*
 * native_sim runs the model in zero simulated time, so its cycle counter would time every run at 0:
 * measure host time instead (microseconds, scaled like simulated time).
 */
static uint64_t start_us;

void tvmrt_platform_timer_start(void) { start_us = native_rtc_gettime_us(RTC_CLOCK_PSEUDOHOSTREALTIME); }

uint64_t tvmrt_platform_timer_elapsed(void) {
  return native_rtc_gettime_us(RTC_CLOCK_PSEUDOHOSTREALTIME) - start_us;
}

uint32_t tvmrt_platform_timer_hz(void) { return 1000000u; }

#elif defined(CONFIG_TIMER_HAS_64BIT_CYCLE_COUNTER)
static uint64_t start_cycles;

void tvmrt_platform_timer_start(void) { start_cycles = k_cycle_get_64(); }

uint64_t tvmrt_platform_timer_elapsed(void) { return k_cycle_get_64() - start_cycles; }

uint32_t tvmrt_platform_timer_hz(void) { return (uint32_t)sys_clock_hw_cycles_per_sec(); }

#else
/*
 * Only a 32-bit cycle counter (Cortex-M SysTick): extend it in software. Correct as long as elapsed() is
 * called at least once per counter wrap (the profiler calls it per operator; 2^32 cycles is seconds to
 * minutes at MCU clocks).
 */
static uint32_t last_cycles;
static uint64_t total_cycles;

void tvmrt_platform_timer_start(void) {
  last_cycles = k_cycle_get_32();
  total_cycles = 0;
}

uint64_t tvmrt_platform_timer_elapsed(void) {
  uint32_t now = k_cycle_get_32();
  total_cycles += (uint32_t)(now - last_cycles);
  last_cycles = now;
  return total_cycles;
}

uint32_t tvmrt_platform_timer_hz(void) { return (uint32_t)sys_clock_hw_cycles_per_sec(); }
#endif

void tvmrt_platform_abort(int32_t code) {
#if defined(CONFIG_ARCH_POSIX)
  /* A process: exit with the code so the host sees it in the exit status. */
  posix_exit((int)code);
#else
  ARG_UNUSED(code);
  /* Stop here with interrupts off; a debugger shows `code`, the host sees the session time out. */
  (void)irq_lock();
  for (;;) {
    arch_nop();
  }
#endif
  CODE_UNREACHABLE;
}
