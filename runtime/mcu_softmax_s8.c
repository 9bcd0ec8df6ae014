/*
 * mcu_softmax_s8.c - int8 softmax over the last axis (int8 output, scale 1/256, zero point -128).
 *
 * Follows TFLite 2.14 reference_ops::Softmax for int8 -> int8 (kernels/internal/reference/softmax.h),
 * which is what the BUILTIN_REF resolver runs: activations.cc SoftmaxPrepare<kReference> computes
 * PreprocessSoftmaxScaling(beta, input_scale, kScaledDiffIntegerBits = 5) and
 * diff_min = -CalculateInputRadius(5, input_left_shift); SoftmaxQuantized<int8,int8>(kReference) calls
 * reference_ops::Softmax (the optimized resolver would use a float table instead). Per row:
 *
 *   diff   = x - max(row)                        (skipped when diff < diff_min)
 *   e      = exp_on_negative_values(Q5.26: MultiplyByQuantizedMultiplierGreaterThanOne(diff, mult, shift))
 *   sum    = sum of Rescale<12>(e)               (Q12.19)
 *   recip  = GetReciprocal(sum, 12, &num_bits_over_unit)
 *   out    = RoundingDivideByPOT(SRDHM(recip, e), num_bits_over_unit + 31 - 8) - 128, clamped to int8
 *
 * The exponentials are recomputed in the second pass exactly as TFLite does (no scratch buffer).
 * Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_softmax_s8(const mcu_softmax_params *params, const int8_t *input, int8_t *output)
{
    int32_t row, c;

    if (params == NULL || input == NULL || output == NULL || params->depth <= 0) {
        return MCU_ERROR_ARGUMENT;
    }
    for (row = 0; row < params->outer; row++) {
        const int8_t *in = input + (size_t)row * params->depth;
        int8_t *out = output + (size_t)row * params->depth;
        int32_t max_in_row = -128;
        int32_t sum_of_exps = 0; /* Q12.19 */
        int32_t shifted_scale;   /* Q0.31 */
        int num_bits_over_unit;
        int out_shift;

        for (c = 0; c < params->depth; c++) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        for (c = 0; c < params->depth; c++) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= params->diff_min) {
                const int32_t scaled = mcu_requantize_gt_one(diff, params->input_beta_multiplier,
                                                             params->input_beta_left_shift);
                sum_of_exps = mcu_fp_add(sum_of_exps, mcu_fp_rdbp(mcu_fp_exp_on_negative_values_q5(scaled), 12));
            }
        }
        shifted_scale = mcu_fp_get_reciprocal(sum_of_exps, 12, &num_bits_over_unit);
        out_shift = num_bits_over_unit + 31 - 8;
        for (c = 0; c < params->depth; c++) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= params->diff_min) {
                const int32_t scaled = mcu_requantize_gt_one(diff, params->input_beta_multiplier,
                                                             params->input_beta_left_shift);
                const int32_t e = mcu_fp_exp_on_negative_values_q5(scaled);
                const int32_t unsat = mcu_fp_rdbp(mcu_fp_srdhm(shifted_scale, e), out_shift);
                out[c] = (int8_t)mcu_clamp_i32(unsat - 128, -128, 127);
            } else {
                out[c] = -128;
            }
        }
    }
    return MCU_OK;
}
