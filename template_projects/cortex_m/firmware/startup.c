/*
 * Cortex-M startup: the vector table placed at the start of flash, and the reset handler that makes the
 * C environment (copy .data from its flash image, zero .bss, enable the FPU where there is one) before
 * calling main(). No libc start files are used (-nostartfiles): nothing here needs constructors.
 *
 * Two stacks (cortex_m.ld): main() and everything it calls run on the process stack (PSP, stack_bytes
 * long, at the very start of RAM so that overflowing it leaves RAM and faults instead of silently
 * corrupting the model's arena); exceptions run on a small handler stack (MSP) above it, so the fault
 * handler still has a stack when the process stack is exhausted.
 *
 * A fault ends the run through semihosting with exit status 70 + the exception number (72 NMI,
 * 73 HardFault, 74 MemManage, 75 BusFault, 76 UsageFault), or 80 + the exception number when it was a
 * stack overflow; the message on QEMU's console names it. cortex_m_firmware.describe_exit_status reads
 * these back. On Armv8-M Mainline cores (Cortex-M33, M55) PSPLIM guards the process stack, so an overflow
 * is a UsageFault (STKOF) before the first write below it.
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
extern uint32_t __stack_bottom__;
extern uint32_t __stack_top__;
extern uint32_t __handler_stack_top__;

int main(void);

void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);
void firmware_exit(int status);
/* Drivers that need an interrupt define these; the weak aliases keep unused slots harmless. */
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void Timer_IRQHandler(void) __attribute__((weak, alias("Default_Handler")));

#define NUM_EXTERNAL_IRQS 32

typedef void (*vector_t)(void);

/* Entry 0 is the initial stack pointer, the rest are handler addresses (Thumb bit set by the linker). */
__attribute__((section(".isr_vector"), used)) const vector_t g_vector_table[16 + NUM_EXTERNAL_IRQS] = {
    [0] = (vector_t)(uintptr_t)&__handler_stack_top__,
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
#define SCB_SHCSR (*(volatile uint32_t*)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t*)0xE000ED28u)
#define SCB_MMFAR (*(volatile uint32_t*)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t*)0xE000ED38u)
#define CFSR_MSTKERR (1u << 4)   /* MemManage while pushing the exception frame */
#define CFSR_MMARVALID (1u << 7)
#define CFSR_STKERR (1u << 12)   /* BusFault while pushing the exception frame */
#define CFSR_BFARVALID (1u << 15)
#define CFSR_STKOF (1u << 20)     /* Armv8-M: a stack pointer went below its limit register (PSPLIM) */
#define FAULT_EXIT_BASE 70
#define STACK_OVERFLOW_EXIT_BASE 80
/* A faulting access this far below the process stack is taken for an overflow (a large frame skips). */
#define OVERFLOW_REACH_BYTES 0x10000u

/* main() on the process stack; its return value becomes QEMU's exit status. Naked: no frame of its own
   on the handler stack that the switch would strand. */
__attribute__((naked, noreturn)) static void run_main_on_process_stack(void) {
  __asm volatile(
#if defined(__ARM_ARCH_8M_MAIN__)
      /* Armv8-M: the process stack's limit register makes an overflow a UsageFault (STKOF) at the first
         push below __stack_bottom__, before anything is written there, however large the frame. */
      "ldr r0, =__stack_bottom__\n\t"
      "msr psplim, r0\n\t"
#endif
      "ldr r0, =__stack_top__\n\t"
      "msr psp, r0\n\t"
      "movs r0, #2\n\t" /* CONTROL.SPSEL = 1: thread mode uses PSP */
      "msr control, r0\n\t"
      "isb\n\t"
      "bl main\n\t"
      "bl firmware_exit\n\t"
      "b .\n\t"
      ".ltorg");
}

void firmware_exit(int status) {
  semihosting_exit(status);
  for (;;) {
  }
}

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
  /* MemManage, BusFault and UsageFault get their own exception numbers instead of all escalating to
     HardFault, so the report can name them. */
  SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);
  run_main_on_process_stack();
}

static const char* const kFaultNames[] = {"NMI", "HardFault", "MemManage", "BusFault", "UsageFault"};

/* A fault means the firmware is broken (stack overflow, bad pointer): stop where a debugger or QEMU
   (the semihosting exit status) shows it, rather than resetting in a loop. Runs on the handler stack. */
void Fault_Handler(void) {
  uint32_t ipsr;
  uint32_t psp;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  __asm volatile("mrs %0, psp" : "=r"(psp));
  uint32_t exception = ipsr & 0x1FFu;
  uint32_t cfsr = SCB_CFSR;
  uint32_t bottom = (uint32_t)(uintptr_t)&__stack_bottom__;
  uint32_t address = (cfsr & CFSR_BFARVALID) ? SCB_BFAR : (cfsr & CFSR_MMARVALID) ? SCB_MMFAR : bottom;
  int overflow = (cfsr & (CFSR_MSTKERR | CFSR_STKERR | CFSR_STKOF)) != 0u || psp < bottom + 32u ||
                 (address < bottom && bottom - address <= OVERFLOW_REACH_BYTES);
  semihosting_write0("cortex_m firmware: ");
  semihosting_write0(exception >= 2u && exception <= 6u ? kFaultNames[exception - 2u] : "fault");
  semihosting_write0(overflow ? " (stack overflow: the main stack, stack_bytes, is exhausted)\n"
                              : " exception\n");
  semihosting_exit((overflow ? STACK_OVERFLOW_EXIT_BASE : FAULT_EXIT_BASE) + (int)exception);
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
