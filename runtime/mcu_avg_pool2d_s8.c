/*
 * mcu_avg_pool2d_s8.c - int8 average pooling, NHWC, explicit padding.
 *
 * Follows TFLite 2.14 reference_integer_ops::AveragePool (kernels/internal/reference/integer_ops/pooling.h):
 * the sum of the valid (unpadded) raw int8 values under the window, divided by their count with
 * TFLite's rounding   acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count   (C division,
 * truncating), then clamped to the fused activation range. Input and output share scale and zero point.
 *
 * The division by the (window-dependent) count is done by a multiply with a reciprocal that is exact for
 * the numerators that can occur (see mcu_div_round_away); it is recomputed only when the count changes
 * (at the borders), so the inner loop holds no division. Portable C for every core.
 *
 * count_include_pad (ONNX's AveragePool option; TFLite never sets it) also counts the window positions that
 * fall inside the explicit pads, each holding pad_value (the zero point), as mcutool.reference does.
 *
 * mcu_avg_pool2d_s16: the same for int16 tensors (TFLite's 16x8 scheme; reference_integer_ops::AveragePool for
 * int16, as TFLite Micro's pooling.cc runs it), dividing without the reciprocal (its numerators are larger).
 */
#include "mcu_kernels.h"

/* Numerators are |acc| + count / 2 <= 128 * count + count / 2. With m = ceil(2^32 / count) the product
 * n * m / 2^32 floors to n / count exactly while n * (m * count - 2^32) < 2^32, which holds for every such
 * n when count <= MCU_POOL_MAX_RECIP_COUNT (129 * 4096 * 4096 < 2^32). Larger windows divide. */
#define MCU_POOL_MAX_RECIP_COUNT 4096

static inline int32_t mcu_pool_div_round(int32_t acc, int32_t count, uint32_t recip)
{
    const uint32_t half = (uint32_t)(count / 2);
    if (acc > 0) {
        const uint32_t n = (uint32_t)acc + half;
        return count == 1 ? acc
               : (recip ? (int32_t)(((uint64_t)n * recip) >> 32) : (int32_t)(n / (uint32_t)count));
    } else {
        const uint32_t n = (uint32_t)(-acc) + half;
        return count == 1 ? acc
               : -(recip ? (int32_t)(((uint64_t)n * recip) >> 32) : (int32_t)(n / (uint32_t)count));
    }
}

/* The pool over int8 (in8/out8) or int16 (in16/out16) tensors: whichever pointers are given. */
MCU_DTYPE_BODY mcu_status avg_pool_run(const mcu_pool_params *params, const int8_t *in8, const int16_t *in16,
                                       int8_t *out8, int16_t *out16)
{
    int32_t b, oy, ox, ch, fy, fx;
    int32_t last_count = -1;
    uint32_t recip = 0;

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
                    const int32_t valid = (fy_end - fy_start) * (fx_end - fx_start);
                    int32_t count = valid;
                    int32_t pad_sum = 0;
                    const size_t out_px = (((size_t)b * out.h + oy) * out.w + ox) * depth;
                    if (params->count_include_pad) {
                        /* window positions inside input + explicit pads */
                        const int32_t py0 = in_y0 < -params->pad_top ? -params->pad_top - in_y0 : 0;
                        const int32_t py1 = params->filter_h < in.h + params->pad_bottom - in_y0
                                                ? params->filter_h : in.h + params->pad_bottom - in_y0;
                        const int32_t px0 = in_x0 < -params->pad_left ? -params->pad_left - in_x0 : 0;
                        const int32_t px1 = params->filter_w < in.w + params->pad_right - in_x0
                                                ? params->filter_w : in.w + params->pad_right - in_x0;
                        count = (py1 > py0 && px1 > px0) ? (py1 - py0) * (px1 - px0) : 0;
                        pad_sum = (count - (fy_end > fy_start && fx_end > fx_start ? valid : 0)) * params->pad_value;
                    }
                    if (count <= 0 || (!params->count_include_pad && (fy_end <= fy_start || fx_end <= fx_start))) {
                        return MCU_ERROR_EMPTY;
                    }
                    if (count != last_count) {
                        last_count = count;
                        recip = (in8 != NULL && count > 1 && count <= MCU_POOL_MAX_RECIP_COUNT)
                                    ? 0xFFFFFFFFu / (uint32_t)count + 1u
                                    : 0u;
                    }
                    for (ch = 0; ch < depth; ch++) {
                        int32_t acc = pad_sum;
                        int32_t v;
                        for (fy = fy_start; fy < fy_end; fy++) {
                            const size_t row = in_b + (size_t)(in_y0 + fy) * row_stride + ch;
                            for (fx = fx_start; fx < fx_end; fx++) {
                                const size_t i = row + (size_t)(in_x0 + fx) * depth;
                                acc += in8 != NULL ? in8[i] : in16[i];
                            }
                        }
                        v = mcu_pool_div_round(acc, count, recip);
                        v = mcu_clamp_i32(v, params->act.min, params->act.max);
                        if (out8 != NULL) {
                            out8[out_px + ch] = (int8_t)v;
                        } else {
                            out16[out_px + ch] = (int16_t)v;
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}

mcu_status mcu_avg_pool2d_s8(const mcu_pool_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    return avg_pool_run(params, input, NULL, output, NULL);
}

mcu_status mcu_avg_pool2d_s16(const mcu_pool_params *params, const int16_t *input, int16_t *output)
{
    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    return avg_pool_run(params, NULL, input, NULL, output);
}
