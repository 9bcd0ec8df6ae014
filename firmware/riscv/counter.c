/* RISC-V counters (see mcu_counter.h): minstret counts retired instructions, on silicon and in QEMU;
 * mcycle counts cycles on silicon and, under QEMU -icount shift=0, instructions. Both are 64-bit CSR
 * pairs on RV32, read high-low-high so that a carry between the halves is never missed. */
#include <stdint.h>

#include "mcu_counter.h"

/* Debian's binutils 2.40 wants Zicsr named, but gcc 12's rv32imac multilib does not: name it per use. */
#define CSR_READ(reg, var) \
    __asm__ volatile(".option push\n\t.option arch, +zicsr\n\tcsrr %0, " reg "\n\t.option pop" : "=r"(var))

#if defined(MCU_COUNTER_MINSTRET)
#define CSR_LO "minstret"
#define CSR_HI "minstreth"
#elif defined(MCU_COUNTER_MCYCLE)
#define CSR_LO "mcycle"
#define CSR_HI "mcycleh"
#else
#error "no counter for this board: define MCU_COUNTER_MINSTRET or MCU_COUNTER_MCYCLE (see mcu_counter.h)"
#endif

static uint64_t overhead;
static uint64_t start_stamp;

__attribute__((noipa)) uint64_t mcu_counter_now(void)
{
    uint32_t hi, lo, hi_again;
    do {
        CSR_READ(CSR_HI, hi);
        CSR_READ(CSR_LO, lo);
        CSR_READ(CSR_HI, hi_again);
    } while (hi != hi_again);
    return ((uint64_t)hi << 32) | lo;
}

__attribute__((noipa)) void mcu_count_begin(void)
{
    start_stamp = mcu_counter_now();
}

__attribute__((noipa)) uint64_t mcu_count_end(void)
{
    return mcu_counter_now() - start_stamp - overhead;
}

void mcu_counter_init(void)
{
    overhead = 0;
    mcu_count_begin(); /* an empty region: what begin + end cost by themselves */
    overhead = mcu_count_end();
}
