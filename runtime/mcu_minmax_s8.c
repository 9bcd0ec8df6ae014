/*
 * mcu_minmax_s8.c - int8 and int16 elementwise maximum / minimum with broadcasting over N, H, W, C.
 *
 * TFLite Micro's MAXIMUM / MINIMUM (kernels/maximum_minimum.cc, reference_ops::MaximumMinimumBroadcastSlow):
 * the raw int8 values are compared; inputs and output share one quantization, so nothing is rescaled.
 * Portable C for every core.
 */
#include "mcu_kernels.h"
#include "mcu_broadcast.h"

static inline int8_t mcu_max_one(const mcu_broadcast_params *p, int8_t a, int8_t b)
{
    (void)p;
    return a > b ? a : b;
}

static inline int8_t mcu_min_one(const mcu_broadcast_params *p, int8_t a, int8_t b)
{
    (void)p;
    return a < b ? a : b;
}

mcu_status mcu_maximum_s8(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                          int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || !MCU_BROADCAST_OK(params)) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_BROADCAST_BINARY(params, input1, input2, output, mcu_max_one);
    return MCU_OK;
}

mcu_status mcu_minimum_s8(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                          int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || !MCU_BROADCAST_OK(params)) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_BROADCAST_BINARY(params, input1, input2, output, mcu_min_one);
    return MCU_OK;
}

/* int16 (16x8 models): the same raw comparison on int16 elements. */
static inline int16_t mcu_max_one_s16(const mcu_broadcast_params *p, int16_t a, int16_t b)
{
    (void)p;
    return a > b ? a : b;
}

static inline int16_t mcu_min_one_s16(const mcu_broadcast_params *p, int16_t a, int16_t b)
{
    (void)p;
    return a < b ? a : b;
}

mcu_status mcu_maximum_s16(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                           int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || !MCU_BROADCAST_OK(params)) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_BROADCAST_BINARY_T(int16_t, int16_t, int16_t, params, input1, input2, output, mcu_max_one_s16);
    return MCU_OK;
}

mcu_status mcu_minimum_s16(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                           int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || !MCU_BROADCAST_OK(params)) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_BROADCAST_BINARY_T(int16_t, int16_t, int16_t, params, input1, input2, output, mcu_min_one_s16);
    return MCU_OK;
}
