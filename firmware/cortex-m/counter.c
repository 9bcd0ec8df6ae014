/* Cortex-M counters (see mcu_counter.h).
 *
 * Emulator timers tick once per P = MCU_COUNTER_UNITS_PER_TICK instructions (CMSDK dual timer at 25 MHz
 * under -icount shift=0: P = 40). Reading such a timer alone is exact only to a tick, so
 * mcu_counter_now() reads it through a vernier loop: each pass is exactly P + 1 instructions long, so
 * successive reads fall one instruction later within the tick, and the loop ends on the first read
 * that lands exactly on a tick edge. That read's tick count times P is the exact instruction time of a
 * fixed point in this code, and the loop's own length ((P + 1) per pass) is known, so the stamp can
 * leave out everything the counter executed itself. The remaining cost of a begin/end pair is constant;
 * mcu_counter_init() measures it once, and mcu_count_end() returns exact instruction counts.
 */
#include <stdint.h>

#include "mcu_counter.h"

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#if defined(MCU_COUNTER_CMSDK_DUALTIMER)
/* ARM CMSDK APB dual timer, timer 1: 32-bit, free-running, counting down from 0xFFFFFFFF. */
#define COUNTER_VALUE_ADDR (MCU_COUNTER_BASE + 0x04u)
#define COUNTS_DOWN 1
static void counter_start(void)
{
    REG(MCU_COUNTER_BASE + 0x08u) = 0;           /* Timer1Control: stop */
    REG(MCU_COUNTER_BASE + 0x00u) = 0xFFFFFFFFu; /* Timer1Load */
    REG(MCU_COUNTER_BASE + 0x08u) = 0x82u;       /* enable, 32-bit, free-running, prescale 1, no IRQ */
}
#elif defined(MCU_COUNTER_STM32_TIM)
/* STM32 general-purpose 32-bit timer (TIM2/TIM5), counting up. */
#define COUNTER_VALUE_ADDR (MCU_COUNTER_BASE + 0x24u)
#define COUNTS_DOWN 0
static void counter_start(void)
{
    REG(MCU_COUNTER_BASE + 0x00u) = 0;                     /* CR1: stop */
    REG(MCU_COUNTER_BASE + 0x28u) = MCU_COUNTER_PRESCALER; /* PSC */
    REG(MCU_COUNTER_BASE + 0x2Cu) = 0xFFFFFFFFu;           /* ARR */
    REG(MCU_COUNTER_BASE + 0x14u) = 1;                     /* EGR.UG: load the prescaler */
    REG(MCU_COUNTER_BASE + 0x24u) = 0;                     /* CNT */
    REG(MCU_COUNTER_BASE + 0x00u) = 1;                     /* CR1.CEN */
}
#elif defined(MCU_COUNTER_DWT_CYCCNT)
/* Data Watchpoint and Trace cycle counter (hardware only: QEMU 7.2 reads it as 0). */
#define COUNTER_VALUE_ADDR 0xE0001004u
#define COUNTS_DOWN 0
static void counter_start(void)
{
    REG(0xE000EDFCu) |= 1u << 24;    /* DEMCR.TRCENA */
    REG(0xE0001FB0u) = 0xC5ACCE55u;  /* DWT_LAR unlock (Cortex-M7) */
    REG(0xE0001004u) = 0;            /* DWT_CYCCNT */
    REG(0xE0001000u) |= 1u;          /* DWT_CTRL.CYCCNTENA */
}
#else
#error "no counter for this board: define one of the MCU_COUNTER_* kinds (see mcu_counter.h)"
#endif

#if COUNTS_DOWN
#define VERNIER_ELAPSED "subs %[elapsed], %[first], %[value]\n\t"
#define TICKS(raw) (0u - (raw))
#else
#define VERNIER_ELAPSED "subs %[elapsed], %[value], %[first]\n\t"
#define TICKS(raw) (raw)
#endif

static uint32_t last_ticks;
static uint32_t wraps;
static uint64_t self_time;  /* the counter's own variable cost so far (vernier passes) */
static uint64_t overhead;   /* what an empty begin/end pair measures */
static uint64_t start_stamp;

#if MCU_COUNTER_UNITS_PER_TICK > 1
#if MCU_COUNTER_UNITS_PER_TICK < 5
#error "the vernier loop needs at least 5 instructions per tick"
#endif
/* Returns the counter value read by an instruction that sits exactly on a tick edge, and in *passes
 * how many P + 1 instruction passes it took to get there.
 * Reads are P + 1 instructions apart: each lands one instruction later in its tick than the one before,
 * so the tick count advances by exactly one per pass until a read crosses into the next tick at phase 0,
 * where it advances by two and the loop stops. */
static uint32_t read_at_tick_edge(uint32_t *passes)
{
    uint32_t first, steps, value, elapsed;
    __asm__ volatile(
        "ldr  %[first], [%[addr]]\n\t"  /* read 0 */
        "movs %[steps], #0\n\t"
        "nop\n\t"                       /* pads read 0 -> read 1 to P+1 instructions, like every pass */
        "nop\n"
        "1:\n\t"
        ".rept %c[pad]\n\t"
        "nop\n\t"
        ".endr\n\t"
        "adds %[steps], %[steps], #1\n\t"
        "ldr  %[value], [%[addr]]\n\t"  /* read n, P+1 instructions after read n-1 */
        VERNIER_ELAPSED                 /* ticks since read 0 */
        "cmp  %[elapsed], %[steps]\n\t"
        "beq  1b\n\t"
        : [first] "=&r"(first), [steps] "=&r"(steps), [value] "=&r"(value), [elapsed] "=&r"(elapsed)
        : [addr] "r"(COUNTER_VALUE_ADDR), [pad] "i"(MCU_COUNTER_UNITS_PER_TICK - 4)
        : "cc", "memory");
    *passes = steps;
    return value;
}
#else
static uint32_t read_at_tick_edge(uint32_t *passes)
{
    *passes = 0;
    return REG(COUNTER_VALUE_ADDR);
}
#endif

/* The time of the edge read, minus every vernier pass run so far (this call's included), so that the
 * difference of two stamps is what ran between the calls plus a constant. */
__attribute__((noipa)) uint64_t mcu_counter_now(void)
{
    uint32_t passes;
    uint32_t ticks = TICKS(read_at_tick_edge(&passes));
    if (ticks < last_ticks) {
        wraps++;
    }
    last_ticks = ticks;
    self_time += (uint64_t)passes * (MCU_COUNTER_UNITS_PER_TICK + 1u);
    return (((uint64_t)wraps << 32) | ticks) * (uint64_t)MCU_COUNTER_UNITS_PER_TICK - self_time;
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
    counter_start();
    last_ticks = TICKS(REG(COUNTER_VALUE_ADDR));
    wraps = 0;
    self_time = 0;
    overhead = 0;
    mcu_count_begin(); /* an empty region: what begin + end cost by themselves */
    overhead = mcu_count_end();
}
