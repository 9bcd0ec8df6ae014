/*
 * mcu_conv2d_s4.c - CONV_2D (and FULLY_CONNECTED, as a 1x1 conv over (batches, 1, 1, input size)) with int8
 * activations and packed int4 weights (TFLite's INT4), read in place: no int8 copy of the weights in RAM.
 *
 * Arithmetic: reference_integer_ops::ConvPerChannel, as TFLite Micro runs an INT4 filter (it unpacks the values to
 * int8 in Prepare and calls the int8 kernel): acc = bias + sum over the taps inside the input of
 * (x + input_offset) * w, per output channel requantized by mcu_requant_s8 (mcu_requant.h). The sum is exact:
 * int4 weights cannot overflow int32 for any filter of fewer than 2^20 values (|(x + offset) * w| <= 255 * 8).
 *
 * Per output pixel, the window (x + input_offset, 0 where it falls outside the input) is gathered once into a
 * stack column of int16 (MCU_S4_COLS values at a time), then every output channel's filter row is a dot
 * product of that column with its packed nibbles. Weight layout (mcutool/ops/int4_weights.py writes it): each
 * output channel's row of K = kh * kw * cin values follows the previous one, two values per byte. When K is a
 * multiple of 8, each group of 8 values w0..w7 is stored as bytes j = 0..3 holding w_j (low nibble) and
 * w_{j+4} (high nibble): on a core with the DSP extension one word then gives (w0, w2), (w1, w3), (w4, w6),
 * (w5, w7) as int16 pairs scaled by 16 with a mask and SXTB16 -- the pairs SMLAD multiplies with the column --,
 * and the sum is divided by 16 at the end (exact). Otherwise the row is in TFLite's order (low nibble first).
 */
#include "mcu_kernels.h"
#include "mcu_requant.h"

#define MCU_S4_COLS 256   /* column values per pass (a multiple of 8): 512 B of stack */
#define MCU_S4_BLOCK 32   /* output channels per pass over the column chunks: their accumulators */

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MCU_S4_SIMD 1
#else
#define MCU_S4_SIMD 0
#endif

/* Weight value `index` of a packed array in TFLite's order (low nibble first). */
static inline int32_t mcu_s4_nibble(const uint8_t *packed, size_t index)
{
    const int32_t b = (int8_t)packed[index >> 1];
    return (index & 1u) ? (b >> 4) : ((int32_t)((uint32_t)b << 28) >> 28);
}

/* Sum of col[i] * w[i] over n values (n a multiple of 8), the row in the grouped layout starting at `w`. */
static inline int32_t mcu_s4_dot_grouped(const int16_t *col, const uint8_t *w, int32_t n)
{
    int32_t i;
#if MCU_S4_SIMD
    int32_t acc = 0;
    for (i = 0; i < n; i += 8, w += 4, col += 8) {
        uint32_t word, c01, c23, c45, c67; /* __builtin_memcpy: one LDR each (the build is -ffreestanding) */
        __builtin_memcpy(&word, w, 4);
        __builtin_memcpy(&c01, col, 4);
        __builtin_memcpy(&c23, col + 2, 4);
        __builtin_memcpy(&c45, col + 4, 4);
        __builtin_memcpy(&c67, col + 6, 4);
        {
            const uint32_t lo = (word << 4) & 0xF0F0F0F0u; /* 16*w0, 16*w1, 16*w2, 16*w3 in bytes 0..3 */
            const uint32_t hi = word & 0xF0F0F0F0u;        /* 16*w4 .. 16*w7 */
            /* SXTB16 takes bytes 0 and 2 (1 and 3 rotated): pairs (w0, w2), (w1, w3), (w4, w6), (w5, w7), which
             * the column holds in that order (mcu_s4_slot) */
            acc = __smlad(__sxtb16(lo), c01, acc);
            acc = __smlad(__sxtb16((lo >> 8 | lo << 24)), c23, acc);
            acc = __smlad(__sxtb16(hi), c45, acc);
            acc = __smlad(__sxtb16((hi >> 8 | hi << 24)), c67, acc);
        }
    }
    return acc >> 4;
#else
    int32_t acc = 0;
    for (i = 0; i < n; i += 8, w += 4, col += 8) {
        int32_t j;
        for (j = 0; j < 4; j++) {
            const int32_t b = (int8_t)w[j];
            acc += col[j] * ((int32_t)((uint32_t)b << 28) >> 28) + col[j + 4] * (b >> 4);
        }
    }
    return acc;
#endif
}

/* Column position of window value k within its group of 8 (mcu_s4_dot_grouped's order): on SIMD cores the
 * column holds each group as c0 c2 c1 c3 c4 c6 c5 c7 (so each int16 pair meets its weight pair); else in order. */
static inline int32_t mcu_s4_slot(int32_t k)
{
#if MCU_S4_SIMD
    static const uint8_t order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    return (k & ~7) + order[k & 7];
#else
    return k;
#endif
}

/* The window values [k0, k0 + n) of output pixel (y0, x0) as (x + input_offset), 0 outside the input: tap by
 * tap (kh * kw taps of cin values each). */
static void mcu_s4_gather(const mcu_conv_params *p, const int8_t *image, int32_t y0, int32_t x0, int32_t k0,
                          int32_t n, int grouped, int16_t *col)
{
    const int32_t cin = p->input.c, kw = p->filter.w;
    int32_t tap = k0 / cin, c = k0 - tap * cin, k = 0;
    while (k < n) {
        const int32_t iy = y0 + (tap / kw) * p->dilation_h, ix = x0 + (tap % kw) * p->dilation_w;
        const int32_t count = cin - c < n - k ? cin - c : n - k;
        const int inside = iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w;
        const int8_t *src = image + ((size_t)(inside ? iy : 0) * p->input.w + (inside ? ix : 0)) * cin + c;
        int32_t j;
        for (j = 0; j < count; j++, k++) {
            col[grouped ? mcu_s4_slot(k) : k] = inside ? (int16_t)(src[j] + p->input_offset) : 0;
        }
        c = 0;
        tap++;
    }
}

MCU_KERNEL_OPT mcu_status mcu_conv2d_s4(const mcu_conv_params *params, const int8_t *input, int8_t *output)
{
    const mcu_conv_params *p = params;
    const uint8_t *weights = (const uint8_t *)p->weights;
    const int32_t K = p->filter.h * p->filter.w * p->filter.c, cout = p->output.c;
    const int grouped = (K % 8) == 0;
    int16_t col[MCU_S4_COLS];
    int32_t acc[MCU_S4_BLOCK];
    int32_t b, oy, ox;
    if (p == NULL || input == NULL || output == NULL || p->weights == NULL
        || p->multiplier == NULL || p->shift == NULL || p->filter.c != p->input.c || p->filter.n != cout) {
        return MCU_ERROR_ARGUMENT;
    }
    for (b = 0; b < p->output.n; b++) {
        const int8_t *image = input + (size_t)b * p->input.h * p->input.w * p->input.c;
        for (oy = 0; oy < p->output.h; oy++) {
            for (ox = 0; ox < p->output.w; ox++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
                int8_t *out = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * cout;
                int32_t c0;
                if (K <= MCU_S4_COLS) { /* one chunk: gathered once for every channel block */
                    mcu_s4_gather(p, image, y0, x0, 0, K, grouped, col);
                }
                for (c0 = 0; c0 < cout; c0 += MCU_S4_BLOCK) {
                    const int32_t nc = cout - c0 < MCU_S4_BLOCK ? cout - c0 : MCU_S4_BLOCK;
                    int32_t k0, c;
                    for (c = 0; c < nc; c++) {
                        acc[c] = p->bias32 != NULL ? p->bias32[c0 + c] : 0;
                    }
                    for (k0 = 0; k0 < K; k0 += MCU_S4_COLS) {
                        const int32_t n = K - k0 < MCU_S4_COLS ? K - k0 : MCU_S4_COLS;
                        if (K > MCU_S4_COLS) {
                            mcu_s4_gather(p, image, y0, x0, k0, n, grouped, col);
                        }
                        for (c = 0; c < nc; c++) {
                            const size_t first = (size_t)(c0 + c) * K + k0; /* nibble index of the chunk */
                            if (grouped) {
                                acc[c] += mcu_s4_dot_grouped(col, weights + first / 2, n);
                            } else {
                                int32_t k, sum = 0;
                                for (k = 0; k < n; k++) {
                                    sum += col[k] * mcu_s4_nibble(weights, first + (size_t)k);
                                }
                                acc[c] += sum;
                            }
                        }
                    }
                    for (c = 0; c < nc; c++) {
                        out[c0 + c] = (int8_t)mcu_requant_s8(acc[c], p->multiplier[c0 + c], p->shift[c0 + c],
                                                             p->output_offset, p->act.min, p->act.max);
                    }
                }
            }
        }
    }
    return MCU_OK;
}
