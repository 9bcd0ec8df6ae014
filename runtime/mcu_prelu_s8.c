/*
 * mcu_prelu_s8.c - int8 PReLU with alpha broadcast over N, H, W, C.
 *
 * TFLite Micro's PRELU (kernels/prelu_common.cc, reference_ops::BroadcastPrelu4DSlow):
 *   v = x + input_offset;  out = v >= 0 ? MultiplyByQuantizedMultiplier(v, positive_quant)
 *                                      : MultiplyByQuantizedMultiplier(v * (alpha + alpha_offset), negative_quant)
 *   out + output_offset, clamped to int8. Portable C for every core.
 */
#include "mcu_kernels.h"
#include "mcu_broadcast.h"

mcu_status mcu_prelu_s8(const mcu_prelu_params *params, const int8_t *input, const int8_t *alpha, int8_t *output)
{
    if (params == NULL || input == NULL || alpha == NULL || output == NULL
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
                    const int8_t *p1 = input + mcu_broadcast_offset(s1, b, y, x);
                    const int8_t *p2 = alpha + mcu_broadcast_offset(s2, b, y, x);
                    for (c = 0; c < o.c; c++) {
                        const int32_t v = p1[c * s1.c] + params->input_offset;
                        int32_t out;
                        if (v >= 0) {
                            out = mcu_requantize(v, params->positive_quant.multiplier, params->positive_quant.shift);
                        } else {
                            const int32_t a = p2[c * s2.c] + params->alpha_offset;
                            out = mcu_requantize(v * a, params->negative_quant.multiplier,
                                                 params->negative_quant.shift);
                        }
                        *output++ = (int8_t)mcu_clamp_i32(out + params->output_offset, -128, 127);
                    }
                }
            }
        }
    }
    return MCU_OK;
}
