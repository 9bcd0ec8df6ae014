/*
 * mcu_squared_difference_s8.c - int8 (x1 - x2)^2 with broadcasting over N, H, W, C.
 *
 * TFLite Micro's SQUARED_DIFFERENCE (kernels/squared_difference.cc, int8): both inputs offset, shifted left by
 * left_shift (7), rescaled to a common scale (input*_quant, right shifts only), subtracted; the square
 * (< 2^31 for int8 operands) is requantized by output_quant, plus output_offset, clamped to int8.
 * Portable C for every core.
 */
#include "mcu_kernels.h"
#include "mcu_broadcast.h"

static inline int8_t mcu_squared_difference_one(const mcu_squared_difference_params *p, int32_t x1, int32_t x2)
{
    const int32_t s1 = mcu_requantize(mcu_fp_shl(x1 + p->input1_offset, p->left_shift), p->input1_quant.multiplier,
                                      p->input1_quant.shift);
    const int32_t s2 = mcu_requantize(mcu_fp_shl(x2 + p->input2_offset, p->left_shift), p->input2_quant.multiplier,
                                      p->input2_quant.shift);
    const int32_t diff = s1 - s2;
    const int32_t out = mcu_requantize(diff * diff, p->output_quant.multiplier, p->output_quant.shift)
                        + p->output_offset;
    return (int8_t)mcu_clamp_i32(out, -128, 127);
}

mcu_status mcu_squared_difference_s8(const mcu_squared_difference_params *params, const int8_t *input1,
                                     const int8_t *input2, int8_t *output)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL
        || !mcu_broadcasts_to(params->input1, params->output) || !mcu_broadcasts_to(params->input2, params->output)) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims o = params->output;
        const mcu_strides s1 = mcu_broadcast_strides(params->input1);
        const mcu_strides s2 = mcu_broadcast_strides(params->input2);
        int32_t b, y, x, c;
        for (b = 0; b < o.n; b++) {
            for (y = 0; y < o.h; y++) {
                for (x = 0; x < o.w; x++) {
                    const int8_t *p1 = input1 + mcu_broadcast_offset(s1, b, y, x);
                    const int8_t *p2 = input2 + mcu_broadcast_offset(s2, b, y, x);
                    for (c = 0; c < o.c; c++) {
                        *output++ = mcu_squared_difference_one(params, p1[c * s1.c], p2[c * s2.c]);
                    }
                }
            }
        }
    }
    return MCU_OK;
}
