/* Cortex-M vector table and fault report.
 *
 * Every exception but reset goes to mcu_fault_entry (startup.S), which reports through semihosting:
 *   MCUTOOL fault exception=3 pc=0x... lr=0x... xpsr=0x... sp=0x... cfsr=0x... hfsr=0x... mmfar=0x... bfar=0x...
 * and exits with MCU_EXIT_FAULT. No interrupt is enabled by the firmware, so any IRQ is unexpected too.
 * MCU_IRQ_COUNT (board data: cpu.irq_count) sizes the table.
 */
#include <stdint.h>

#include "mcu_io.h"
#include "mcu_report.h"
#include "mcu_stack.h"

#ifndef MCU_IRQ_COUNT
#define MCU_IRQ_COUNT 32
#endif

#define SCB_CFSR (*(volatile const uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile const uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile const uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile const uint32_t *)0xE000ED38u)

typedef void (*mcu_vector_t)(void);

extern uint32_t __stack_top[];
extern uint32_t __stack_bottom[];
void Reset_Handler(void);
void mcu_fault_entry(void);
void mcu_fault_report(uint32_t sp, uint32_t pc, uint32_t lr, uint32_t xpsr) __attribute__((noreturn, used));

#define F mcu_fault_entry

__attribute__((section(".isr_vector"), used)) const mcu_vector_t mcu_vectors[16 + MCU_IRQ_COUNT] = {
    (mcu_vector_t)(uintptr_t)__stack_top, /* 0: initial SP */
    Reset_Handler,                        /* 1: reset */
    F, F, F, F, F,                        /* 2 NMI, 3 HardFault, 4 MemManage, 5 BusFault, 6 UsageFault */
    0, 0, 0, 0,                           /* 7-10: reserved */
    F, F,                                 /* 11 SVCall, 12 DebugMonitor */
    0,                                    /* 13: reserved */
    F, F,                                 /* 14 PendSV, 15 SysTick */
    [16 ... 16 + MCU_IRQ_COUNT - 1] = F,  /* external interrupts */
};

#undef F

void mcu_fault_report(uint32_t sp, uint32_t pc, uint32_t lr, uint32_t xpsr)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    mcu_report_begin("fault");
    mcu_report_u64("exception", ipsr & 0x1FFu);
    mcu_report_hex("pc", pc);
    mcu_report_hex("lr", lr);
    mcu_report_hex("xpsr", xpsr);
    mcu_report_hex("sp", sp);
    mcu_report_hex("cfsr", SCB_CFSR);
    mcu_report_hex("hfsr", SCB_HFSR);
    mcu_report_hex("mmfar", SCB_MMFAR);
    mcu_report_hex("bfar", SCB_BFAR);
    if (sp < (uint32_t)(uintptr_t)__stack_bottom || sp > (uint32_t)(uintptr_t)__stack_top) {
        mcu_report_str("stack", "overflow");
    }
    mcu_report_end();
    mcu_exit(MCU_EXIT_FAULT);
}
