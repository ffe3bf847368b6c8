/*
 * ARM semihosting (BKPT 0xAB) for the two things a QEMU run needs from it: an exit status and a message
 * on QEMU's console. Compiled to nothing when the board has no semihosting (a real board without a
 * debugger would take a HardFault on BKPT).
 */
#ifndef CORTEX_M_SEMIHOSTING_H_
#define CORTEX_M_SEMIHOSTING_H_

#include <stdint.h>

#include "board_config.h"

#if BOARD_SEMIHOSTING
static inline uint32_t semihosting_call(uint32_t op, const void* arg) {
  register uint32_t r0 __asm("r0") = op;
  register const void* r1 __asm("r1") = arg;
  __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

/* SYS_EXIT_EXTENDED: QEMU exits with `status` as its own exit status. */
static inline void semihosting_exit(int status) {
  uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)status};
  (void)semihosting_call(0x20u, block);
}

/* SYS_WRITE0: a NUL-terminated string on QEMU's semihosting console (its stderr here). */
static inline void semihosting_write0(const char* text) { (void)semihosting_call(0x04u, text); }
#else
static inline void semihosting_exit(int status) { (void)status; }
static inline void semihosting_write0(const char* text) { (void)text; }
#endif

#endif /* CORTEX_M_SEMIHOSTING_H_ */
