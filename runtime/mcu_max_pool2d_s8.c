/*
 * mcu_max_pool2d_s8.c - int8 max pooling, NHWC, explicit padding.
 *
 * Follows TFLite 2.14 reference_integer_ops::MaxPool (kernels/internal/reference/integer_ops/pooling.h):
 * the maximum of the valid (unpadded) int8 values under the window (starting from -128), clamped to the
 * fused activation range. Input and output share scale and zero point. Portable C for every core.
 */
#include "mcu_kernels.h"

mcu_status mcu_max_pool2d_s8(const mcu_pool_params *params, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, ch, fy, fx;

    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims in = params->input;
        const mcu_dims out = params->output;
        const int32_t depth = in.c;
        const int32_t row_stride = in.w * depth;
        if (in.n != out.n || in.c != out.c || params->stride_h <= 0 || params->stride_w <= 0) {
            return MCU_ERROR_ARGUMENT;
        }
        for (b = 0; b < out.n; b++) {
            const int8_t *in_b = input + (size_t)b * in.h * row_stride;
            for (oy = 0; oy < out.h; oy++) {
                const int32_t in_y0 = oy * params->stride_h - params->pad_top;
                const int32_t fy_start = in_y0 < 0 ? -in_y0 : 0;
                const int32_t fy_end = params->filter_h < in.h - in_y0 ? params->filter_h : in.h - in_y0;
                for (ox = 0; ox < out.w; ox++) {
                    const int32_t in_x0 = ox * params->stride_w - params->pad_left;
                    const int32_t fx_start = in_x0 < 0 ? -in_x0 : 0;
                    const int32_t fx_end = params->filter_w < in.w - in_x0 ? params->filter_w : in.w - in_x0;
                    int8_t *out_px = output + (((size_t)b * out.h + oy) * out.w + ox) * depth;
                    for (ch = 0; ch < depth; ch++) {
                        int32_t max = -128;
                        for (fy = fy_start; fy < fy_end; fy++) {
                            const int8_t *row = in_b + (size_t)(in_y0 + fy) * row_stride + ch;
                            for (fx = fx_start; fx < fx_end; fx++) {
                                const int32_t v = row[(size_t)(in_x0 + fx) * depth];
                                max = v > max ? v : max;
                            }
                        }
                        out_px[ch] = (int8_t)mcu_clamp_i32(max, params->act.min, params->act.max);
                    }
                }
            }
        }
    }
    return MCU_OK;
}
