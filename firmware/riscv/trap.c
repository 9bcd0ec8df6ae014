/* RISC-V trap report: every trap is unexpected (no interrupt is enabled), so report and exit:
 *   MCUTOOL fault mcause=0x00000002 pc=0x... mtval=0x... sp=0x...
 * pc is mepc, the trapping instruction. */
#include <stdint.h>

#include "mcu_io.h"
#include "mcu_report.h"

extern uint32_t __stack_top[];
extern uint32_t __stack_bottom[];
void mcu_trap_report(uint32_t sp) __attribute__((noreturn, used));

/* Debian's binutils 2.40 wants Zicsr named, but gcc 12's rv32imac multilib does not: name it per use. */
#define CSR_READ(reg, var) \
    __asm__ volatile(".option push\n\t.option arch, +zicsr\n\tcsrr %0, " reg "\n\t.option pop" : "=r"(var))

void mcu_trap_report(uint32_t sp)
{
    uint32_t mepc, mcause, mtval;
    CSR_READ("mepc", mepc);
    CSR_READ("mcause", mcause);
    CSR_READ("mtval", mtval);
    mcu_report_begin("fault");
    mcu_report_hex("mcause", mcause);
    mcu_report_hex("pc", mepc);
    mcu_report_hex("mtval", mtval);
    mcu_report_hex("sp", sp);
    if (sp < (uint32_t)(uintptr_t)__stack_bottom || sp > (uint32_t)(uintptr_t)__stack_top) {
        mcu_report_str("stack", "overflow");
    }
    mcu_report_end();
    mcu_exit(MCU_EXIT_FAULT);
}
