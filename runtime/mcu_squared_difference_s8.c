/*
 * mcu_squared_difference_s8.c - int8 and int16 (x1 - x2)^2 with broadcasting over N, H, W, C.
 *
 * TFLite Micro's SQUARED_DIFFERENCE (kernels/squared_difference.cc, int8): both inputs offset, shifted left by 7
 * and rescaled to a common scale -- a function of the int8 value alone, so tabulated at compile time (scaled1,
 * scaled2) --, subtracted; the square (< 2^31 for int8 operands) is requantized by output_quant, plus
 * output_offset, clamped to int8.
 * Portable C for every core.
 */
#include "mcu_kernels.h"
#include "mcu_broadcast.h"

static inline int8_t mcu_squared_difference_one(const mcu_squared_difference_params *p, int8_t x1, int8_t x2)
{
    const int32_t diff = p->scaled1[(uint8_t)x1] - p->scaled2[(uint8_t)x2];
    const int32_t out = mcu_requantize(diff * diff, p->output_quant.multiplier, p->output_quant.shift)
                        + p->output_offset;
    return (int8_t)mcu_clamp_i32(out, -128, 127);
}

mcu_status mcu_squared_difference_s8(const mcu_squared_difference_params *params, const int8_t *input1,
                                     const int8_t *input2, int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || params->scaled1 == NULL
        || params->scaled2 == NULL || !MCU_BROADCAST_OK(params)) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_BROADCAST_BINARY(params, input1, input2, output, mcu_squared_difference_one);
    return MCU_OK;
}

/* int16 (16x8 models, zero points 0): the inputs rescaled per element (input*_quant, right shifts only). */
static inline int16_t mcu_squared_difference_one_s16(const mcu_squared_difference_s16_params *p, int16_t x1,
                                                     int16_t x2)
{
    const int32_t diff = mcu_requantize(x1, p->input1_quant.multiplier, p->input1_quant.shift)
                         - mcu_requantize(x2, p->input2_quant.multiplier, p->input2_quant.shift);
    const int32_t out = mcu_requantize(diff * diff, p->output_quant.multiplier, p->output_quant.shift);
    return (int16_t)mcu_clamp_i32(out, -32768, 32767);
}

mcu_status mcu_squared_difference_s16(const mcu_squared_difference_s16_params *params, const int8_t *input1,
                                      const int8_t *input2, int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || !MCU_BROADCAST_OK(params)) {
        return MCU_ERROR_ARGUMENT;
    }
    MCU_BROADCAST_BINARY_T(int16_t, int16_t, int16_t, params, input1, input2, output, mcu_squared_difference_one_s16);
    return MCU_OK;
}
