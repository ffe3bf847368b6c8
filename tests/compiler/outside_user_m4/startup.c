/*
 * Minimal Cortex-M4F startup for the Arm MPS2+ AN386 image (QEMU -M mps2-an386): vector table, .data
 * copy, .bss clear, FPU on (the model is built for the hard-float ABI), newlib's semihosting console,
 * main, and exit(status), which semihosting turns into the debugger's (QEMU's) exit status.
 */
#include <stdint.h>
#include <stdlib.h>

extern int main(void);
extern void initialise_monitor_handles(void);

/* From the linker script. */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

void Reset_Handler(void);
void Fault_Handler(void);

__attribute__((section(".isr_vector"), used)) void (*const vector_table[16])(void) = {
    (void (*)(void))(&_estack),
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
};

void Reset_Handler(void) {
  uint32_t* src = &_sidata;
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  /* CPACR: full access to coprocessors 10 and 11 (the FPU) before the first float instruction. */
  *(volatile uint32_t*)0xE000ED88u |= 0xFu << 20;
  __asm__ volatile("dsb");
  __asm__ volatile("isb");
  initialise_monitor_handles();
  exit(main());
}

void Fault_Handler(void) { exit(99); }
