/*
 * mcu_quantize_s8.c - requantization of an int8 tensor (QUANTIZE with an int8 input) to int8 or int16.
 *
 * Follows TFLite Micro's quantize_common.cc: reference_ops::Requantize (kernels/internal/reference/
 * requantize.h) with (m, shift) = QuantizeMultiplier((double)s_in / (double)s_out):
 *
 *   out = MultiplyByQuantizedMultiplier(x - zp_in, m, shift) + zp_out, clamped to the output dtype.
 *
 * (Requantize's XOR-0x80 fast path only applies to int8 <-> uint8.) Portable C for every core.
 */
#include "mcu_kernels.h"

static inline int32_t mcu_quantize_one(const mcu_quantize_params *p, int32_t x)
{
    const int32_t v = mcu_requantize(x + p->input_offset, p->quant.multiplier, p->quant.shift) + p->output_offset;
    return mcu_clamp_i32(v, p->act.min, p->act.max);
}

mcu_status mcu_quantize_s8(const mcu_quantize_params *params, const int8_t *input, int8_t *output)
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

mcu_status mcu_quantize_s8_s16(const mcu_quantize_params *params, const int8_t *input, int16_t *output)
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
