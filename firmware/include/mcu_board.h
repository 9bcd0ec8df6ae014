/* Board start-up: clock tree, caches and the console, from the board file (mcutool.boards).
 *
 * mcu_board_init() runs before main (start-up code) and executes, in order:
 *   1. the clock steps (board file [clock].steps: register writes and bounded waits, e.g. PLL on, wait for
 *      PLLRDY, switch SYSCLK); a wait that times out abandons the remaining steps, so the core stays on its
 *      reset clock instead of switching to a PLL that never locked (QEMU's STM32 RCC reads 0);
 *   2. the Cortex-M7 instruction and data caches, where the board has them (MCU_CACHES);
 *   3. mcu_io_init(): the I/O back end (a UART's pins, clock enables and baud divisor; nothing for
 *      semihosting).
 * The steps come from the generated header mcu_board_config.h (one per image: emulator and board).
 */
#ifndef MCU_BOARD_H
#define MCU_BOARD_H

#include <stdint.h>

/* One register step: SET does *address = (*address & ~mask) | value; WAIT polls until
 * (*address & mask) == value, at most MCU_WAIT_POLLS reads; DELAY spins `value` loops. */
typedef struct {
    uint32_t op;
    uint32_t address;
    uint32_t mask;
    uint32_t value;
} mcu_reg_step;

#define MCU_STEP_SET 0u
#define MCU_STEP_WAIT 1u
#define MCU_STEP_DELAY 2u

#ifndef MCU_WAIT_POLLS
#define MCU_WAIT_POLLS 200000u /* ~1 ms at 200 MHz; PLL lock and regulator ready take ~0.1-0.5 ms */
#endif

/* Runs `count` steps; returns 0, or the 1-based index of the WAIT step that timed out (the rest skipped). */
uint32_t mcu_run_steps(const mcu_reg_step *steps, uint32_t count);

void mcu_board_init(void);
/* The core clock after mcu_board_init(): the rated clock, or the reset clock if a clock wait timed out. */
uint32_t mcu_board_clock_hz(void);
/* 0 when every clock step ran; else the 1-based index of the wait that timed out. */
uint32_t mcu_board_clock_failed_step(void);

#endif
