/*
 * mcu_minmax_s8.c - int8 elementwise maximum / minimum with broadcasting over N, H, W, C.
 *
 * TFLite Micro's MAXIMUM / MINIMUM (kernels/maximum_minimum.cc, reference_ops::MaximumMinimumBroadcastSlow):
 * the raw int8 values are compared; inputs and output share one quantization, so nothing is rescaled.
 * Portable C for every core.
 */
#include "mcu_kernels.h"
#include "mcu_broadcast.h"

static mcu_status mcu_minmax_s8(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                                int8_t *output, int take_max)
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
                        const int8_t v1 = p1[c * s1.c];
                        const int8_t v2 = p2[c * s2.c];
                        *output++ = take_max ? (v1 > v2 ? v1 : v2) : (v1 < v2 ? v1 : v2);
                    }
                }
            }
        }
    }
    return MCU_OK;
}

mcu_status mcu_maximum_s8(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                          int8_t *output)
{
    return mcu_minmax_s8(params, input1, input2, output, 1);
}

mcu_status mcu_minimum_s8(const mcu_broadcast_params *params, const int8_t *input1, const int8_t *input2,
                          int8_t *output)
{
    return mcu_minmax_s8(params, input1, input2, output, 0);
}
