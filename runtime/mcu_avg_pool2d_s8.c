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
 * (at the borders), so the inner loop holds no division.
 *
 * int8 windows of at most 256 pixels sum four channels per 32-bit load (mcu_pool_sum4_s8): two 16-bit lanes per
 * accumulator, channels 0,2 and 1,3 of the word. With the DSP extension (Cortex-M4/M7/M33) SXTAB16 adds the
 * sign-extended bytes (|sum| <= 128 * 256 fits an int16 lane); elsewhere the bytes are biased to unsigned
 * (x ^ 0x80 = x + 128, sums <= 255 * 256 fit a uint16 lane) and masked, the bias taken off once per channel.
 * Cores without unaligned loads (RISC-V) take that path only when every word is aligned; other channels,
 * larger windows and int16 add one element at a time.
 *
 * count_include_pad (ONNX's AveragePool option; TFLite never sets it) also counts the window positions that
 * fall inside the explicit pads, each holding pad_value (the zero point), as mcutool.reference does.
 *
 * mcu_avg_pool2d_s16: the same for int16 tensors (TFLite's 16x8 scheme; reference_integer_ops::AveragePool for
 * int16, as TFLite Micro's pooling.cc runs it), dividing without the reciprocal (its numerators are larger).
 */
#include "mcu_kernels.h"

#include "mcu_dot_s8.h"

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

/* Largest window (pixels) whose four-channel sums fit 16-bit lanes (see the header comment). */
#define MCU_POOL_MAX_SIMD_COUNT 256

/* sum[j] = the sum of channel j of the 4 * words (1 or 2, a constant) at p over rows x cols pixels (rows * cols
 * <= MCU_POOL_MAX_SIMD_COUNT); pixels are `depth` bytes apart, rows `row_stride`. Without SIMD32, p, depth and
 * row_stride are multiples of 4. Lanes: word w's channels 0,2 in acc[2w], 1,3 in acc[2w+1]. */
MCU_DOT_INLINE void mcu_pool_sum_words_s8(const int8_t *p, int32_t rows, int32_t cols, int32_t row_stride,
                                          int32_t depth, const int32_t words, int32_t *sum)
{
    uint32_t acc[4] = {0, 0, 0, 0};
    int32_t r, w;
    for (r = 0; r < rows; r++, p += row_stride) {
        const int8_t *q = p;
        const int8_t *const end = p + (size_t)cols * depth;
        do {
            for (w = 0; w < words; w++) {
#if MCU_DOT_SIMD32
                const int8x4_t v = mcu_ld_s8x4(q + 4 * w);
                acc[2 * w] = (uint32_t)__sxtab16((int16x2_t)acc[2 * w], v);
                acc[2 * w + 1] = (uint32_t)mcu_sxtab16_ror8((int16x2_t)acc[2 * w + 1], v);
#else
                uint32_t v;
                __builtin_memcpy(&v, __builtin_assume_aligned(q + 4 * w, 4), 4);
                v ^= 0x80808080u;
                acc[2 * w] += v & 0x00FF00FFu;
                acc[2 * w + 1] += (v >> 8) & 0x00FF00FFu;
#endif
            }
            q += depth;
        } while (q != end);
    }
    for (w = 0; w < words; w++) {
#if MCU_DOT_SIMD32
        const int32_t bias = 0; /* signed lanes */
        sum[4 * w] = (int16_t)(uint16_t)(acc[2 * w] & 0xFFFFu);
        sum[4 * w + 1] = (int16_t)(uint16_t)(acc[2 * w + 1] & 0xFFFFu);
        sum[4 * w + 2] = (int16_t)(uint16_t)(acc[2 * w] >> 16);
        sum[4 * w + 3] = (int16_t)(uint16_t)(acc[2 * w + 1] >> 16);
#else
        const int32_t bias = 128 * rows * cols; /* unsigned lanes of x + 128 */
        sum[4 * w] = (int32_t)(acc[2 * w] & 0xFFFFu);
        sum[4 * w + 1] = (int32_t)(acc[2 * w + 1] & 0xFFFFu);
        sum[4 * w + 2] = (int32_t)(acc[2 * w] >> 16);
        sum[4 * w + 3] = (int32_t)(acc[2 * w + 1] >> 16);
#endif
        sum[4 * w] -= bias;
        sum[4 * w + 1] -= bias;
        sum[4 * w + 2] -= bias;
        sum[4 * w + 3] -= bias;
    }
}

/* Out of line, so that the pixel loop has its registers to itself. */
__attribute__((noinline)) static void mcu_pool_sum8_s8(const int8_t *p, int32_t rows, int32_t cols,
                                                       int32_t row_stride, int32_t depth, int32_t sum[8])
{
    mcu_pool_sum_words_s8(p, rows, cols, row_stride, depth, 2, sum);
}

__attribute__((noinline)) static void mcu_pool_sum4_s8(const int8_t *p, int32_t rows, int32_t cols,
                                                       int32_t row_stride, int32_t depth, int32_t sum[4])
{
    mcu_pool_sum_words_s8(p, rows, cols, row_stride, depth, 1, sum);
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
                    ch = 0;
                    if (in8 != NULL && fy_end > fy_start && fx_end > fx_start && valid <= MCU_POOL_MAX_SIMD_COUNT
                        && (MCU_DOT_SIMD32 || (((uintptr_t)in8 & 3u) == 0 && (depth & 3) == 0))) {
                        const int8_t *p = in8 + in_b + (size_t)(in_y0 + fy_start) * row_stride
                                          + (size_t)(in_x0 + fx_start) * depth;
                        while (ch + 4 <= depth) {
                            int32_t sum[8], j, n = 4;
                            if (ch + 8 <= depth) {
                                mcu_pool_sum8_s8(p + ch, fy_end - fy_start, fx_end - fx_start, row_stride, depth, sum);
                                n = 8;
                            } else {
                                mcu_pool_sum4_s8(p + ch, fy_end - fy_start, fx_end - fx_start, row_stride, depth, sum);
                            }
                            for (j = 0; j < n; j++, ch++) {
                                const int32_t v = mcu_pool_div_round(pad_sum + sum[j], count, recip);
                                out8[out_px + ch] = (int8_t)mcu_clamp_i32(v, params->act.min, params->act.max);
                            }
                        }
                    }
                    for (; ch < depth; ch++) {
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
