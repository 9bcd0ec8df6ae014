/* Cortex-M7 L1 caches on (ARMv7-M ARM B2.2.7; the sequence of CMSIS's SCB_EnableICache/SCB_EnableDCache):
 * invalidate the instruction cache, then the data cache set by set and way by way, then turn both on in
 * SCB->CCR. Only built for cores the board file marks with cpu.caches (MCU_CACHES). */
#include <stdint.h>

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define SCB_CCR 0xE000ED14u
#define SCB_CCSIDR 0xE000ED80u
#define SCB_CSSELR 0xE000ED84u
#define SCB_ICIALLU 0xE000EF50u
#define SCB_DCISW 0xE000EF60u
#define CCR_DC (1u << 16)
#define CCR_IC (1u << 17)

#define DSB() __asm__ volatile("dsb 0xF" ::: "memory")
#define ISB() __asm__ volatile("isb 0xF" ::: "memory")

void mcu_caches_enable(void);

void mcu_caches_enable(void)
{
    if (REG(SCB_CCR) & CCR_IC) {
        return; /* already on (a debugger or boot loader did it) */
    }
    DSB();
    ISB();
    REG(SCB_ICIALLU) = 0;
    DSB();
    ISB();
    REG(SCB_CCR) |= CCR_IC;
    DSB();
    ISB();

    REG(SCB_CSSELR) = 0; /* level 1 data cache */
    DSB();
    uint32_t ccsidr = REG(SCB_CCSIDR);
    uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    uint32_t line_shift = (ccsidr & 7u) + 4u;
    uint32_t way_shift = (uint32_t)__builtin_clz((ways - 1u) | 1u); /* ways == 1: shift 31, way field unused */
    for (uint32_t set = 0; set < sets; set++) {
        for (uint32_t way = 0; way < ways; way++) {
            REG(SCB_DCISW) = (way << way_shift) | (set << line_shift);
        }
    }
    DSB();
    REG(SCB_CCR) |= CCR_DC;
    DSB();
    ISB();
}
