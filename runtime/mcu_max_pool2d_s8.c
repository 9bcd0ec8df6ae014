/*
 * mcu_max_pool2d_s8.c - int8 max pooling, NHWC, explicit padding.
 *
 * Follows TFLite 2.14 reference_integer_ops::MaxPool (kernels/internal/reference/integer_ops/pooling.h):
 * the maximum of the valid (unpadded) int8 values under the window (starting from -128), clamped to the
 * fused activation range. Input and output share scale and zero point. Portable C for every core.
 * mcu_max_pool2d_s16: the same for int16 tensors (starting from -32768), as TFLite Micro's pooling.cc runs them.
 */
#include "mcu_kernels.h"

/* The pool over int8 (in8/out8) or int16 (in16/out16) tensors: whichever pointers are given. */
MCU_DTYPE_BODY mcu_status max_pool_run(const mcu_pool_params *params, const int8_t *in8, const int16_t *in16,
                                       int8_t *out8, int16_t *out16)
{
    int32_t b, oy, ox, ch, fy, fx;

    {
        const mcu_dims in = params->input;
        const mcu_dims out = params->output;
        const int32_t depth = in.c;
        const int32_t row_stride = in.w * depth;
        if (in.n != out.n || in.c != out.c || params->stride_h <= 0 || params->stride_w <= 0) {
            return MCU_ERROR_ARGUMENT;
        }
        for (b = 0; b < out.n; b++) {
            const size_t in_b = (size_t)b * in.h * row_stride;
            for (oy = 0; oy < out.h; oy++) {
                const int32_t in_y0 = oy * params->stride_h - params->pad_top;
                const int32_t fy_start = in_y0 < 0 ? -in_y0 : 0;
                const int32_t fy_end = params->filter_h < in.h - in_y0 ? params->filter_h : in.h - in_y0;
                for (ox = 0; ox < out.w; ox++) {
                    const int32_t in_x0 = ox * params->stride_w - params->pad_left;
                    const int32_t fx_start = in_x0 < 0 ? -in_x0 : 0;
                    const int32_t fx_end = params->filter_w < in.w - in_x0 ? params->filter_w : in.w - in_x0;
                    const size_t out_px = (((size_t)b * out.h + oy) * out.w + ox) * depth;
                    for (ch = 0; ch < depth; ch++) {
                        int32_t max = in8 != NULL ? -128 : -32768;
                        for (fy = fy_start; fy < fy_end; fy++) {
                            const size_t row = in_b + (size_t)(in_y0 + fy) * row_stride + ch;
                            for (fx = fx_start; fx < fx_end; fx++) {
                                const size_t i = row + (size_t)(in_x0 + fx) * depth;
                                const int32_t v = in8 != NULL ? in8[i] : in16[i];
                                max = v > max ? v : max;
                            }
                        }
                        max = mcu_clamp_i32(max, params->act.min, params->act.max);
                        if (out8 != NULL) {
                            out8[out_px + ch] = (int8_t)max;
                        } else {
                            out16[out_px + ch] = (int16_t)max;
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}

mcu_status mcu_max_pool2d_s8(const mcu_pool_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    return max_pool_run(params, input, NULL, output, NULL);
}

mcu_status mcu_max_pool2d_s16(const mcu_pool_params *params, const int16_t *input, int16_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    return max_pool_run(params, NULL, input, NULL, output);
}
