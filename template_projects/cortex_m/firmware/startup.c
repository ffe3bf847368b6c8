/*
 * Cortex-M startup: the vector table placed at the start of flash, and the reset handler that makes the
 * C environment (copy .data from its flash image, zero .bss, enable the FPU where there is one) before
 * calling main(). No libc start files are used (-nostartfiles): nothing here needs constructors.
 */
#include <stdint.h>

#include "board_config.h"
#include "semihosting.h"

/* Symbols defined by cortex_m.ld. */
extern uint32_t __data_load__;
extern uint32_t __data_start__;
extern uint32_t __data_end__;
extern uint32_t __bss_start__;
extern uint32_t __bss_end__;
extern uint32_t __stack_top__;

int main(void);

void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);
/* Drivers that need an interrupt define these; the weak aliases keep unused slots harmless. */
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void Timer_IRQHandler(void) __attribute__((weak, alias("Default_Handler")));

#define NUM_EXTERNAL_IRQS 32

typedef void (*vector_t)(void);

/* Entry 0 is the initial stack pointer, the rest are handler addresses (Thumb bit set by the linker). */
__attribute__((section(".isr_vector"), used)) const vector_t g_vector_table[16 + NUM_EXTERNAL_IRQS] = {
    [0] = (vector_t)(uintptr_t)&__stack_top__,
    [1] = Reset_Handler,
    [2] = Fault_Handler,  /* NMI */
    [3] = Fault_Handler,  /* HardFault */
    [4] = Fault_Handler,  /* MemManage */
    [5] = Fault_Handler,  /* BusFault */
    [6] = Fault_Handler,  /* UsageFault */
    [11] = Default_Handler, /* SVCall */
    [12] = Default_Handler, /* DebugMon */
    [14] = Default_Handler, /* PendSV */
    [15] = SysTick_Handler,
#if defined(BOARD_TIMER_IRQ)
    [16 + BOARD_TIMER_IRQ] = Timer_IRQHandler,
#endif
};

#define SCB_CPACR (*(volatile uint32_t*)0xE000ED88u)

void Reset_Handler(void) {
#if BOARD_HAS_FPU
  /* CP10 and CP11 full access: must precede any floating-point instruction (hard-float code uses VFP
     registers even for moves), hence first. */
  SCB_CPACR |= (0xFu << 20);
  __asm volatile("dsb\n\tisb" ::: "memory");
#endif
  /* volatile pointers keep GCC from turning these loops into memcpy/memset calls before .data exists. */
  volatile uint32_t* src = &__data_load__;
  volatile uint32_t* dst = &__data_start__;
  while (dst < &__data_end__) {
    *dst++ = *src++;
  }
  for (volatile uint32_t* p = &__bss_start__; p < &__bss_end__; ++p) {
    *p = 0u;
  }
  int status = main();
  semihosting_exit(status);
  for (;;) {
  }
}

/* A fault means the firmware is broken (stack overflow, bad pointer): stop where a debugger or QEMU
   (semihosting exit status 70 + the fault's IPSR number) shows it, rather than resetting in a loop. */
void Fault_Handler(void) {
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  semihosting_write0("cortex_m firmware: fault exception, see the exit status (70 + exception number)\n");
  semihosting_exit(70 + (int)(ipsr & 0x1FFu));
  for (;;) {
  }
}

void Default_Handler(void) {
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  semihosting_write0("cortex_m firmware: unexpected interrupt\n");
  semihosting_exit(170 + (int)(ipsr & 0x3Fu));
  for (;;) {
  }
}
