/*
 * mcu_mean_s8.c - int8 mean over any set of axes of a tensor of rank <= 4 (usually H and W).
 *
 * Follows TFLite 2.14's int8 MEAN with the reference resolver: reduce.cc EvalMean -> EvalQuantizedMean ->
 * reference_ops::QuantizedMeanOrSum (kernels/internal/reference/reduce.h), used for every keep_dims and
 * axis set:
 *
 *   sum  = sum over the reduced elements of (x - zp_in)            (int32)
 *   out  = MultiplyByQuantizedMultiplier(sum, m', shift') + zp_out, clamped to int8
 *
 * where (m', shift') folds 1/count into QuantizeMultiplier(s_in / s_out) = (m, shift) exactly as TFLite
 * does: k = min(floor(log2(count)), 32, 31 + shift), m' = (m << k) / count (int64, truncating),
 * shift' = shift - k. runtime_params computes (m', shift'); the kernel only sums and requantizes.
 * The output is written in order; each output element sums its own reduced block. Portable C.
 *
 * mcu_mean_s16 is the same for int16 tensors (TFLite's 16x8 scheme, zero points 0), as the tflite-micro
 * interpreter computes int16 MEAN: QuantizedMeanOrSum<int16_t, int32_t>, clamped to int16. Both run one loop,
 * which reads whichever input pointer is given.
 */
#include "mcu_kernels.h"

MCU_DTYPE_BODY void mean_run(const mcu_mean_params *params, const int8_t *in8, const int16_t *in16, int8_t *out8,
                     int16_t *out16)
{
    {
        const int32_t in_d[4] = {params->input.n, params->input.h, params->input.w, params->input.c};
        const int32_t stride[4] = {in_d[1] * in_d[2] * in_d[3], in_d[2] * in_d[3], in_d[3], 1};
        int32_t out_d[4], red_d[4];
        int32_t o0, o1, o2, o3, r0, r1, r2, r3, k;
        for (k = 0; k < 4; k++) {
            const int reduced = (params->axis_mask >> k) & 1;
            out_d[k] = reduced ? 1 : in_d[k];
            red_d[k] = reduced ? in_d[k] : 1;
        }
        for (o0 = 0; o0 < out_d[0]; o0++) {
            for (o1 = 0; o1 < out_d[1]; o1++) {
                for (o2 = 0; o2 < out_d[2]; o2++) {
                    for (o3 = 0; o3 < out_d[3]; o3++) {
                        const size_t base = (size_t)o0 * stride[0] + (size_t)o1 * stride[1]
                                            + (size_t)o2 * stride[2] + (size_t)o3;
                        uint32_t usum = 0; /* TFLite's int32 sum, wrapping */
                        int32_t sum;
                        int32_t count = 0;
                        int32_t v;
                        for (r0 = 0; r0 < red_d[0]; r0++) {
                            for (r1 = 0; r1 < red_d[1]; r1++) {
                                for (r2 = 0; r2 < red_d[2]; r2++) {
                                    const size_t row = base + (size_t)r0 * stride[0] + (size_t)r1 * stride[1]
                                                       + (size_t)r2 * stride[2];
                                    for (r3 = 0; r3 < red_d[3]; r3++) {
                                        const size_t i = row + (size_t)r3 * stride[3];
                                        usum += (uint32_t)(in8 != NULL ? (int32_t)in8[i] : (int32_t)in16[i]);
                                    }
                                    count += red_d[3];
                                }
                            }
                        }
                        sum = (int32_t)(usum + (uint32_t)count * (uint32_t)params->input_offset);
                        v = mcu_requantize(sum, params->quant.multiplier, params->quant.shift)
                            + params->output_offset;
                        if (out8 != NULL) {
                            *out8++ = (int8_t)mcu_clamp_i32(v, -128, 127);
                        } else {
                            *out16++ = (int16_t)mcu_clamp_i32(v, -32768, 32767);
                        }
                    }
                }
            }
        }
    }
}

mcu_status mcu_mean_s8(const mcu_mean_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    mean_run(params, input, NULL, output, NULL);
    return MCU_OK;
}

mcu_status mcu_mean_s16(const mcu_mean_params *params, const int16_t *input, int16_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    mean_run(params, NULL, input, NULL, output);
    return MCU_OK;
}
