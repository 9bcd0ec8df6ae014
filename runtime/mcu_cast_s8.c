/*
 * mcu_cast_s8.c - CAST between int8, int16 and int32 tensors.
 *
 * TFLite Micro's CAST (kernels/cast.cc): static_cast of every element; a narrower output keeps the low bits
 * (two's-complement wrap), a wider one the sign-extended value. Elements are moved with memcpy (no alignment or
 * aliasing assumptions). A widening cast may not write over its input; the output must be a distinct buffer.
 * Portable C for every core.
 */
#include <string.h>

#include "mcu_kernels.h"

static int32_t mcu_cast_load(const int8_t *p, int32_t bytes)
{
    if (bytes == 1) {
        return p[0];
    }
    if (bytes == 2) {
        int16_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    {
        int32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
}

static void mcu_cast_store(int8_t *p, int32_t bytes, int32_t v)
{
    if (bytes == 1) {
        p[0] = (int8_t)(uint8_t)((uint32_t)v & 0xffu);
    } else if (bytes == 2) {
        const int16_t w = (int16_t)(uint16_t)((uint32_t)v & 0xffffu);
        memcpy(p, &w, sizeof w);
    } else {
        memcpy(p, &v, sizeof v);
    }
}

mcu_status mcu_cast_s8(const mcu_cast_params *params, const int8_t *input, int8_t *output)
{
    int32_t i;
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    if ((params->input_bytes != 1 && params->input_bytes != 2 && params->input_bytes != 4)
        || (params->output_bytes != 1 && params->output_bytes != 2 && params->output_bytes != 4)) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        mcu_cast_store(output + i * params->output_bytes, params->output_bytes,
                       mcu_cast_load(input + i * params->input_bytes, params->input_bytes));
    }
    return MCU_OK;
}
