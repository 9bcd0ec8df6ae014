/*
 * mcu_reduce_max_s8.c - int8 maximum over any set of axes of a tensor of rank <= 4.
 *
 * Follows TFLite Micro's int8 REDUCE_MAX (micro/kernels/reduce_common.cc EvalMaxHelper ->
 * reference_ops::ReduceGeneric with max, initial value -128): input and output share scale and zero point,
 * so raw values are compared. axis_mask bit 0..3 = N, H, W, C reduced. Output written in order. Portable C.
 */
#include "mcu_kernels.h"

mcu_status mcu_reduce_max_s8(const mcu_reduce_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
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
                        const int8_t *base = input + (size_t)o0 * stride[0] + (size_t)o1 * stride[1]
                                             + (size_t)o2 * stride[2] + (size_t)o3;
                        int8_t best = -128;
                        for (r0 = 0; r0 < red_d[0]; r0++) {
                            for (r1 = 0; r1 < red_d[1]; r1++) {
                                for (r2 = 0; r2 < red_d[2]; r2++) {
                                    const int8_t *p = base + (size_t)r0 * stride[0] + (size_t)r1 * stride[1]
                                                      + (size_t)r2 * stride[2];
                                    for (r3 = 0; r3 < red_d[3]; r3++) {
                                        const int8_t v = p[(size_t)r3 * stride[3]];
                                        best = v > best ? v : best;
                                    }
                                }
                            }
                        }
                        *output++ = best;
                    }
                }
            }
        }
    }
    return MCU_OK;
}
