/* Counting what the core executes in a region of code.
 *
 * In the emulator (QEMU -icount shift=0: one instruction per virtual nanosecond) the counter gives
 * retired instructions, exactly; on a board it gives what the board's counter counts (DWT cycles on
 * Cortex-M, minstret instructions on RISC-V). MCU_COUNTER_UNIT names the unit.
 *
 *   mcu_count_begin();
 *   run_the_region();
 *   uint64_t n = mcu_count_end();   // what run_the_region() executed; the two calls are excluded
 *
 * begin/end pairs do not nest (one measurement at a time). mcu_counter_now() is a monotonic stamp from
 * which the counter's own variable cost is removed: the difference of two stamps is what ran between
 * the calls plus a constant (per-layer stamps: subtract consecutive stamps, then that constant).
 *
 * Which counter: one of MCU_COUNTER_CMSDK_DUALTIMER (mps2: 25 MHz, 40 instructions per tick, read
 * exactly through a vernier loop), MCU_COUNTER_STM32_TIM (netduinoplus2: 1 GHz in QEMU 7.2, one tick
 * per instruction), MCU_COUNTER_DWT_CYCCNT (boards: cycles), MCU_COUNTER_MINSTRET, MCU_COUNTER_MCYCLE,
 * with MCU_COUNTER_BASE (peripheral address), MCU_COUNTER_PRESCALER and MCU_COUNTER_UNITS_PER_TICK
 * (instructions or cycles per tick), all from the board file (mcutool.boards.Board.target_defines()).
 */
#ifndef MCU_COUNTER_H
#define MCU_COUNTER_H

#include <stdint.h>

#if defined(MCU_COUNTER_UNIT_CYCLES)
#define MCU_COUNTER_UNIT "cycles"
#else
#define MCU_COUNTER_UNIT "instructions"
#endif

#ifndef MCU_COUNTER_UNITS_PER_TICK
#define MCU_COUNTER_UNITS_PER_TICK 1
#endif

void mcu_counter_init(void);      /* called by the start-up code before main */
uint64_t mcu_counter_now(void);   /* monotonic stamp in MCU_COUNTER_UNIT (arbitrary origin) */
void mcu_count_begin(void);
uint64_t mcu_count_end(void);

/* A loop of known length (firmware/<arch>/startup.S): for n >= 1 it executes exactly 2n + 1
 * instructions, the call instruction not included. Used to check the counter. */
void mcu_spin(uint32_t n);

#endif
