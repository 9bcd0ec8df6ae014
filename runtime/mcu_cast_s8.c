/*
 * mcu_cast_s8.c - CAST between int8, int16 and int32 tensors.
 *
 * TFLite Micro's CAST (kernels/cast.cc): static_cast of every element; a narrower output keeps the low bits
 * (two's-complement wrap: the conversion of an out-of-range value to a signed type is implementation-defined in
 * C99, and modular on every compiler mcutool targets), a wider one the sign-extended value. A widening cast may
 * not write over its input; the output must be a distinct buffer.
 * Portable C for every core.
 */
#include "mcu_kernels.h"

/* One loop per (input, output) element type. The arena keeps every tensor 8-byte aligned (schedule/placement.py),
 * so the bytes are read and written through pointers of the element types. */
#define MCU_CAST_LOOP(IN_T, OUT_T)                                        \
    do {                                                                   \
        const IN_T *in = (const IN_T *)(const void *)input;                \
        OUT_T *out = (OUT_T *)(void *)output;                              \
        for (i = 0; i < params->size; i++) {                               \
            out[i] = (OUT_T)in[i];                                         \
        }                                                                  \
    } while (0)

mcu_status mcu_cast_s8(const mcu_cast_params *params, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    switch (params->input_bytes * 8 + params->output_bytes) {
    case 1 * 8 + 1: MCU_CAST_LOOP(int8_t, int8_t); break;
    case 2 * 8 + 2: MCU_CAST_LOOP(int16_t, int16_t); break;
    case 4 * 8 + 4: MCU_CAST_LOOP(int32_t, int32_t); break;
    case 1 * 8 + 2: MCU_CAST_LOOP(int8_t, int16_t); break;
    case 1 * 8 + 4: MCU_CAST_LOOP(int8_t, int32_t); break;
    case 2 * 8 + 1: MCU_CAST_LOOP(int16_t, int8_t); break;
    case 2 * 8 + 4: MCU_CAST_LOOP(int16_t, int32_t); break;
    case 4 * 8 + 1: MCU_CAST_LOOP(int32_t, int8_t); break;
    case 4 * 8 + 2: MCU_CAST_LOOP(int32_t, int16_t); break;
    default: return MCU_ERROR_ARGUMENT;
    }
    return MCU_OK;
}
