/*
 * mcu_transpose_s8.c - int8 transpose of a tensor of rank <= 4 by any permutation.
 *
 * Follows TFLite 2.14 reference_ops::Transpose (kernels/internal/reference/transpose.h): output dimension i
 * is input dimension perm[i]; values are moved, never changed (TRANSPOSE keeps scale and zero point).
 * A tensor of rank r < 4 is padded in front with extents of 1 (runtime_params shifts perm to match).
 * The output is written in order; the input is read through permuted strides. Portable C for every core.
 * mcu_transpose_s16 moves int16 values the same way (TFLite Micro's transpose.cc runs int16 too).
 */
#include "mcu_kernels.h"

/* The transpose of int8 (in8/out8) or int16 (in16/out16) values: whichever pointers are given. */
MCU_DTYPE_BODY mcu_status transpose_run(const mcu_transpose_params *params, const int8_t *in8, const int16_t *in16,
                                        int8_t *out8, int16_t *out16)
{
    {
        const int32_t in_d[4] = {params->input.n, params->input.h, params->input.w, params->input.c};
        const int32_t in_stride[4] = {in_d[1] * in_d[2] * in_d[3], in_d[2] * in_d[3], in_d[3], 1};
        int32_t out_d[4], s[4];
        int32_t i0, i1, i2, i3, k;
        int seen = 0;
        for (k = 0; k < 4; k++) {
            const int32_t p = params->perm[k];
            if (p < 0 || p > 3 || (seen & (1 << p))) {
                return MCU_ERROR_ARGUMENT;
            }
            seen |= 1 << p;
            out_d[k] = in_d[p];
            s[k] = in_stride[p];
        }
        for (i0 = 0; i0 < out_d[0]; i0++) {
            for (i1 = 0; i1 < out_d[1]; i1++) {
                for (i2 = 0; i2 < out_d[2]; i2++) {
                    const size_t src = (size_t)i0 * s[0] + (size_t)i1 * s[1] + (size_t)i2 * s[2];
                    for (i3 = 0; i3 < out_d[3]; i3++) {
                        if (out8 != NULL) {
                            *out8++ = in8[src + (size_t)i3 * s[3]];
                        } else {
                            *out16++ = in16[src + (size_t)i3 * s[3]];
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}

mcu_status mcu_transpose_s8(const mcu_transpose_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    return transpose_run(params, input, NULL, output, NULL);
}

mcu_status mcu_transpose_s16(const mcu_transpose_params *params, const int16_t *input, int16_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    return transpose_run(params, NULL, input, NULL, output);
}
