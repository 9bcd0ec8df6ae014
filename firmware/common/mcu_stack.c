/* Stack high-water mark over the reserve the linker script sets aside (symbols from templates/linker). */
#include <stdint.h>

#include "mcu_stack.h"

extern uint32_t __stack_bottom[]; /* lowest address of the reserve */
extern uint32_t __stack_top[];    /* initial stack pointer (one past the highest word) */

uint32_t mcu_stack_size(void)
{
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_bottom);
}

uint32_t mcu_stack_high_water(void)
{
    const volatile uint32_t *word = __stack_bottom;
    while (word < __stack_top && *word == MCU_STACK_PAINT) {
        word++;
    }
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)word);
}
