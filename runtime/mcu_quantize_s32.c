/*
 * mcu_quantize_s32.c - requantization of an int32 tensor (QUANTIZE with an int32 input) to int8 or int16.
 *
 * Follows TFLite Micro's quantize_common.cc: reference_ops::Requantize (kernels/internal/reference/
 * requantize.h) with (m, shift) = QuantizeMultiplier((double)s_in / (double)s_out):
 *
 *   out = MultiplyByQuantizedMultiplier(x - zp_in, m, shift) + zp_out, clamped to the output dtype.
 *
 * x - zp_in is int32 arithmetic, as in TFLite Micro (it wraps where TFLite's overflows). Portable C.
 */
#include "mcu_kernels.h"

static inline int32_t mcu_quantize_one(const mcu_quantize_params *p, int32_t x)
{
    const int32_t v = mcu_requantize(mcu_fp_add(x, p->input_offset), p->quant.multiplier, p->quant.shift)
                      + p->output_offset;
    return mcu_clamp_i32(v, p->act.min, p->act.max);
}

mcu_status mcu_quantize_s32_s8(const mcu_quantize_params *params, const int32_t *input, int8_t *output)
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

mcu_status mcu_quantize_s32_s16(const mcu_quantize_params *params, const int32_t *input, int16_t *output)
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
