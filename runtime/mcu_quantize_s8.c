/*
 * mcu_quantize_s8.c - int8 -> int8 requantization (QUANTIZE with an int8 input).
 *
 * Follows TFLite 2.14 reference_ops::Requantize (kernels/internal/reference/requantize.h) as quantize.cc
 * calls it for int8 -> int8, with (m, shift) = QuantizeMultiplier(s_in / s_out):
 *
 *   out = MultiplyByQuantizedMultiplier(x - zp_in, m, shift) + zp_out, clamped to int8.
 *
 * (Requantize's XOR-0x80 fast path only applies to int8 <-> uint8.) Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_quantize_s8(const mcu_quantize_params *params, const int8_t *input, int8_t *output)
{
    int32_t i;

    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        const int32_t v = mcu_requantize(input[i] + params->input_offset, params->quant.multiplier,
                                         params->quant.shift)
                          + params->output_offset;
        output[i] = (int8_t)mcu_clamp_i32(v, -128, 127);
    }
    return MCU_OK;
}
