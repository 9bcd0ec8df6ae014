/* Clock set-up, caches and console start-up (see mcu_board.h). The register steps are board data, rendered
 * into mcu_board_config.h per image; nothing here knows a board. */
#include <stdint.h>

#include "mcu_board.h"
#include "mcu_board_config.h"
#include "mcu_io.h"

#define REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#if MCU_CLOCK_STEP_COUNT > 0
static const mcu_reg_step clock_steps[MCU_CLOCK_STEP_COUNT] = MCU_CLOCK_STEPS;
#endif

static uint32_t clock_hz = MCU_RESET_CLOCK_HZ;
static uint32_t clock_failed_step;

uint32_t mcu_run_steps(const mcu_reg_step *steps, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        const mcu_reg_step *s = &steps[i];
        if (s->op == MCU_STEP_SET) {
            REG(s->address) = (REG(s->address) & ~s->mask) | s->value;
            continue;
        }
        if (s->op == MCU_STEP_DELAY) {
            for (volatile uint32_t n = 0; n < s->value; n++) {
            }
            continue;
        }
        uint32_t polls = 0;
        while ((REG(s->address) & s->mask) != s->value) {
            if (++polls >= MCU_WAIT_POLLS) {
                return i + 1u;
            }
        }
    }
    return 0;
}

#if defined(MCU_CACHES)
void mcu_caches_enable(void); /* firmware/<arch>/ */
#endif

void mcu_board_init(void)
{
#if MCU_CLOCK_STEP_COUNT > 0
    clock_failed_step = mcu_run_steps(clock_steps, MCU_CLOCK_STEP_COUNT);
    clock_hz = clock_failed_step == 0 ? MCU_CLOCK_HZ : MCU_RESET_CLOCK_HZ;
#endif
#if defined(MCU_CACHES)
    mcu_caches_enable();
#endif
    mcu_io_init();
}

uint32_t mcu_board_clock_hz(void)
{
    return clock_hz;
}

uint32_t mcu_board_clock_failed_step(void)
{
    return clock_failed_step;
}
