/*
 * mcu_quantize_s16.c - requantization of an int16 tensor (QUANTIZE with an int16 input) to int8, int16 or
 * int32.
 *
 * Follows TFLite Micro's quantize_common.cc: reference_ops::Requantize (kernels/internal/reference/
 * requantize.h) with (m, shift) = QuantizeMultiplier((double)s_in / (double)s_out):
 *
 *   out = MultiplyByQuantizedMultiplier(x - zp_in, m, shift) + zp_out, clamped to the output dtype.
 *
 * Portable C for every core.
 */
#include "mcu_kernels.h"

static inline int32_t mcu_quantize_one(const mcu_quantize_params *p, int32_t x)
{
    const int32_t v = mcu_requantize(x + p->input_offset, p->quant.multiplier, p->quant.shift) + p->output_offset;
    return mcu_clamp_i32(v, p->act.min, p->act.max);
}

mcu_status mcu_quantize_s16_s8(const mcu_quantize_params *params, const int16_t *input, int8_t *output)
{
    int32_t i;

    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        output[i] = (int8_t)mcu_quantize_one(params, input[i]);
    }
    return MCU_OK;
}

mcu_status mcu_quantize_s16(const mcu_quantize_params *params, const int16_t *input, int16_t *output)
{
    int32_t i;

    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        output[i] = (int16_t)mcu_quantize_one(params, input[i]);
    }
    return MCU_OK;
}

mcu_status mcu_quantize_s16_s32(const mcu_quantize_params *params, const int16_t *input, int32_t *output)
{
    int32_t i;

    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        output[i] = mcu_quantize_one(params, input[i]);
    }
    return MCU_OK;
}
