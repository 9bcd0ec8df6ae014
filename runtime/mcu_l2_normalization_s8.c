/*
 * mcu_l2_normalization_s8.c - int8 L2 normalization over the last axis.
 *
 * TFLite Micro's L2_NORMALIZATION (kernels/l2norm.cc, reference_integer_ops::L2Normalization): per row,
 * acc = sum (x + input_offset)^2, (m, s) = GetInvSqrtQuantizedMultiplierExp(acc), and each output is
 * MultiplyByQuantizedMultiplier(x + input_offset, m, s + 7) clamped to int8 (output scale 1/128, zero point 0).
 * Each row is read whole before it is written, so the output may overwrite the input. Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_l2_normalization_s8(const mcu_l2_normalization_params *params, const int8_t *input, int8_t *output)
{
    int32_t row, i;
    if (params == NULL || input == NULL || output == NULL || params->depth <= 0 || params->depth > (1 << 15)) {
        return MCU_ERROR_ARGUMENT;
    }
    for (row = 0; row < params->outer; row++) {
        const int8_t *in = input + row * params->depth;
        int8_t *out = output + row * params->depth;
        int32_t acc = 0, multiplier;
        int shift;
        for (i = 0; i < params->depth; i++) {
            const int32_t v = in[i] + params->input_offset;
            acc += v * v;
        }
        mcu_fp_inv_sqrt(acc, &multiplier, &shift);
        for (i = 0; i < params->depth; i++) {
            const int32_t v = in[i] + params->input_offset;
            out[i] = (int8_t)mcu_clamp_i32(mcu_requantize(v, multiplier, shift + 7), -128, 127);
        }
    }
    return MCU_OK;
}
