/* Stack high-water mark: the start-up code paints the whole stack reserve with MCU_STACK_PAINT before
 * main runs; the deepest word no longer holding the pattern marks how much stack was ever used. */
#ifndef MCU_STACK_H
#define MCU_STACK_H

#include <stdint.h>

#define MCU_STACK_PAINT 0xC5ACCE55u

uint32_t mcu_stack_size(void);        /* bytes reserved by the linker script (__stack_size) */
uint32_t mcu_stack_high_water(void);  /* bytes of it used so far, in 4-byte steps */

#endif
