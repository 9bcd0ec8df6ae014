/*
 * mcu_leaky_relu_s16.c - int16 leaky ReLU (TFLite's 16x8 scheme: zero points 0).
 *
 * Follows TFLite Micro's leaky_relu.cc for int16: reference_ops::QuantizeLeakyRelu<int16_t>
 * (kernels/internal/reference/leaky_relu.h) with the multipliers leaky_relu_common.cc's Prepare computes
 * (identity = QuantizeMultiplier(s_in / s_out), alpha = QuantizeMultiplier(s_in * alpha / s_out)):
 *
 *   out = MultiplyByQuantizedMultiplier(x, x >= 0 ? identity : alpha), clamped to int16.
 *
 * The int8 leaky ReLU is a function of one byte and runs as a 256-entry table (mcu_lut_s8.c). Portable C.
 */
#include "mcu_kernels.h"

mcu_status mcu_leaky_relu_s16(const mcu_leaky_relu_params *params, const int16_t *input, int16_t *output)
{
    int32_t i;

    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->size; i++) {
        const int32_t x = input[i];
        const mcu_quant q = x >= 0 ? params->identity : params->alpha;
        output[i] = (int16_t)mcu_clamp_i32(mcu_requantize(x, q.multiplier, q.shift), -32768, 32767);
    }
    return MCU_OK;
}
