/*
 * mcu_softmax_s16.c - SOFTMAX int16 -> int16 (TFLite's 16x8 scheme: zero points 0, output scale 1/32768) over
 * the last axis.
 *
 * Follows reference_ops::SoftmaxInt16 (kernels/internal/reference/softmax.h) as TFLite Micro runs it, with the
 * two tables its SoftmaxPrepare builds (micro/kernels/softmax_common.cc), computed at compile time and passed
 * in: exp over [-10, 0] and 1 / (1 + x) over [0, 1], 513 Q0.15 entries each, read with linear interpolation
 * (mcu_lut_lookup_s16, TFLite's lut_lookup). Per row: the difference to the row maximum, scaled so that
 * [-65535, 0] means [-10, 0] and re-centred by +32767, looks up exp; the sum of the exps is normalized by its
 * leading zeros to look up its reciprocal; each output is exp * reciprocal rounded back to Q0.15, clamped to
 * [0, 32767]. The exps are kept in the output row between the two passes, as TFLite does. Portable C.
 */
#include "mcu_kernels.h"

static int16_t mcu_lut_lookup_s16(int32_t value, const int16_t *lut)
{
    const int32_t index = 256 + (value >> 7);
    const int16_t base = lut[index];
    const int16_t slope = (int16_t)(lut[index + 1] - base);
    return (int16_t)(base + ((slope * (value & 0x7f) + 64) >> 7));
}

mcu_status mcu_softmax_s16(const mcu_softmax_s16_params *params, const int16_t *input, int16_t *output)
{
    int32_t i, c;
    if (params == NULL || input == NULL || output == NULL || params->exp_lut == NULL
        || params->reciprocal_lut == NULL || params->depth <= 0) {
        return MCU_ERROR_ARGUMENT;
    }
    for (i = 0; i < params->outer; i++) {
        const int16_t *x = input + (size_t)i * params->depth;
        int16_t *y = output + (size_t)i * params->depth;
        int16_t max_in_row = x[0];
        int32_t sum_of_exps = 0, sym_shifted_sum, shifted_sum, right_shift;
        int16_t reciprocal;
        int headroom_plus_one;
        for (c = 1; c < params->depth; c++) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        for (c = 0; c < params->depth; c++) {
            const int32_t scaled = mcu_requantize(x[c] - max_in_row, params->input_multiplier, params->input_shift);
            y[c] = mcu_lut_lookup_s16(mcu_clamp_i32(scaled + 32767, -32768, 32767), params->exp_lut);
            sum_of_exps += y[c];
        }
        if (sum_of_exps <= 0) {
            return MCU_ERROR_ARGUMENT; /* the exp of the row maximum is 32767: only a corrupt table gets here */
        }
        headroom_plus_one = mcu_clz_u32((uint32_t)sum_of_exps);
        shifted_sum = (int32_t)((((int64_t)sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        sym_shifted_sum = shifted_sum - ((1 << 15) + (1 << 16));
        reciprocal = mcu_lut_lookup_s16(mcu_clamp_i32(sym_shifted_sum, -32768, 32767), params->reciprocal_lut);
        right_shift = 31 - headroom_plus_one;
        for (c = 0; c < params->depth; c++) {
            const int64_t r = ((int64_t)y[c] * reciprocal + ((int64_t)1 << (right_shift - 1))) >> right_shift;
            y[c] = (int16_t)(r < 0 ? 0 : (r > 32767 ? 32767 : r));
        }
    }
    return MCU_OK;
}
