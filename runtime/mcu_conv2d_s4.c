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
 * product of that column with its packed nibbles, two output channels per pass over the column. Weight layout
 * (mcutool/ops/int4_weights.py writes it): each output channel's row of K = kh * kw * cin values, padded with
 * zeros to a multiple of 8, follows the previous one, two values per byte; each group of 8 values w0..w7 is
 * stored as bytes j = 0..3 holding w_j (low nibble) and w_{j+4} (high nibble). On a core with the DSP extension
 * one word then gives (w0, w2), (w1, w3), (w4, w6), (w5, w7) as int16 pairs scaled by 16 with a mask and SXTB16
 * -- the pairs SMLAD multiplies with the column, which is gathered 4 values at a time with SXTB16 and SADD16 --,
 * and the sum is divided by 16 at the end (exact); elsewhere shifts unpack the nibbles.
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

#if MCU_S4_SIMD
/* SXTB16 of x rotated right by 8 (bytes 1 and 3): one instruction (GCC does not fold the rotation itself) */
static inline uint32_t mcu_s4_sxtb16_ror8(uint32_t x)
{
    uint32_t y;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(y) : "r"(x));
    return y;
}

/* One group of 8 weights (a word in the grouped layout) times the column's 4 int16 pairs, added to acc (x16).
 * SXTB16 takes bytes 0 and 2 (1 and 3 rotated): pairs (w0, w2), (w1, w3), (w4, w6), (w5, w7), which the column
 * holds in that order (mcu_s4_slot). */
static inline int32_t mcu_s4_group(uint32_t word, uint32_t c01, uint32_t c23, uint32_t c45, uint32_t c67,
                                   int32_t acc)
{
    const uint32_t lo = (word << 4) & 0xF0F0F0F0u; /* 16*w0, 16*w1, 16*w2, 16*w3 in bytes 0..3 */
    const uint32_t hi = word & 0xF0F0F0F0u;        /* 16*w4 .. 16*w7 */
    acc = __smlad(__sxtb16(lo), c01, acc);
    acc = __smlad(mcu_s4_sxtb16_ror8(lo), c23, acc);
    acc = __smlad(__sxtb16(hi), c45, acc);
    return __smlad(mcu_s4_sxtb16_ror8(hi), c67, acc);
}

static inline uint32_t mcu_s4_load32(const void *p) /* one LDR (unaligned allowed); the build is -ffreestanding */
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}
#endif

/* Sums of col[i] * w[i] over n values (n a multiple of 8) for two rows of the grouped layout, w0 and w1 (the
 * same row twice for a last odd channel), added to *a0 and *a1: the column is loaded once for both (four rows
 * a pass measured slower on Cortex-M7: the accumulators and column words no longer fit the registers). */
static inline void mcu_s4_dot2_grouped(const int16_t *col, const uint8_t *w0, const uint8_t *w1, int32_t n,
                                       int32_t *a0, int32_t *a1)
{
    int32_t i, s0 = 0, s1 = 0;
#if MCU_S4_SIMD
    for (i = 0; i < n; i += 8, w0 += 4, w1 += 4, col += 8) {
        const uint32_t c01 = mcu_s4_load32(col), c23 = mcu_s4_load32(col + 2);
        const uint32_t c45 = mcu_s4_load32(col + 4), c67 = mcu_s4_load32(col + 6);
        s0 = mcu_s4_group(mcu_s4_load32(w0), c01, c23, c45, c67, s0);
        s1 = mcu_s4_group(mcu_s4_load32(w1), c01, c23, c45, c67, s1);
    }
    *a0 += s0 >> 4;
    *a1 += s1 >> 4;
#else
    for (i = 0; i < n; i += 8, w0 += 4, w1 += 4, col += 8) {
        int32_t j;
        for (j = 0; j < 4; j++) {
            const int32_t b0 = (int8_t)w0[j], b1 = (int8_t)w1[j];
            s0 += col[j] * ((int32_t)((uint32_t)b0 << 28) >> 28) + col[j + 4] * (b0 >> 4);
            s1 += col[j] * ((int32_t)((uint32_t)b1 << 28) >> 28) + col[j + 4] * (b1 >> 4);
        }
    }
    *a0 += s0;
    *a1 += s1;
#endif
}

/* Column position of window value k within its group of 8 (mcu_s4_group's order): on SIMD cores the column
 * holds each group as c0 c2 c1 c3 c4 c6 c5 c7 (so each int16 pair meets its weight pair); else in order. */
static inline int32_t mcu_s4_slot(int32_t k)
{
#if MCU_S4_SIMD
    static const uint8_t order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    return (k & ~7) + order[k & 7];
#else
    return k;
#endif
}

/* The window values [k0, k0 + n) of output pixel (y0, x0) as (x + input_offset), 0 outside the input and past
 * the window's K values (the rows' padding to a multiple of 8): tap by tap (kh * kw taps of cin values each). */
static void mcu_s4_gather(const mcu_conv_params *p, const int8_t *image, int32_t y0, int32_t x0, int32_t k0,
                          int32_t n, int16_t *col)
{
    const int32_t cin = p->input.c, kw = p->filter.w, taps = p->filter.h * kw;
    int32_t tap = k0 / cin, c = k0 - tap * cin, k = 0;
    while (k < n && tap < taps) {
        const int32_t iy = y0 + (tap / kw) * p->dilation_h, ix = x0 + (tap % kw) * p->dilation_w;
        const int32_t end = k + (cin - c < n - k ? cin - c : n - k);
        if (iy < 0 || iy >= p->input.h || ix < 0 || ix >= p->input.w) {
            for (; k < end; k++) {
                col[mcu_s4_slot(k)] = 0;
            }
        } else {
            const int8_t *src = image + ((size_t)iy * p->input.w + ix) * cin + c; /* value k: src[k - first] */
            const int32_t first = k;
#if MCU_S4_SIMD
            if ((k & 3) == 0) { /* 4 values a step: SXTB16 gives the pairs (x0, x2), (x1, x3) in slot order */
                const uint32_t offset2 = ((uint32_t)(uint16_t)p->input_offset << 16) | (uint16_t)p->input_offset;
                for (; k + 4 <= end; k += 4) {
                    const uint32_t x = mcu_s4_load32(src + (k - first));
                    const uint32_t even = __sadd16(__sxtb16(x), offset2), odd = __sadd16(mcu_s4_sxtb16_ror8(x), offset2);
                    __builtin_memcpy(col + k, &even, 4);
                    __builtin_memcpy(col + k + 2, &odd, 4);
                }
            }
#endif
            for (; k < end; k++) {
                col[mcu_s4_slot(k)] = (int16_t)(src[k - first] + p->input_offset);
            }
        }
        c = 0;
        tap++;
    }
    for (; k < n; k++) {
        col[mcu_s4_slot(k)] = 0;
    }
}

MCU_KERNEL_OPT mcu_status mcu_conv2d_s4(const mcu_conv_params *params, const int8_t *input, int8_t *output)
{
    const mcu_conv_params *p = params;
    const uint8_t *weights = (const uint8_t *)p->weights;
    const int32_t K = (p->filter.h * p->filter.w * p->filter.c + 7) & ~7, cout = p->output.c; /* padded rows */
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
                    mcu_s4_gather(p, image, y0, x0, 0, K, col);
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
                            mcu_s4_gather(p, image, y0, x0, k0, n, col);
                        }
                        for (c = 0; c < nc; c += 2) {
                            const uint8_t *w0 = weights + ((size_t)(c0 + c) * K + k0) / 2;
                            const uint8_t *w1 = c + 1 < nc ? w0 + K / 2 : w0;
                            int32_t spare = 0;
                            mcu_s4_dot2_grouped(col, w0, w1, n, &acc[c], c + 1 < nc ? &acc[c + 1] : &spare);
                        }
                    }
                    for (c = 0; c < nc; c++) {
                        const int32_t m = p->multiplier[c0 + c], sh = p->shift[c0 + c];
                        out[c0 + c] = (int8_t)(sh < 0 ? mcu_requant_fast_s8(acc[c], m, mcu_requant_round(sh), -sh - 1,
                                                                            p->output_offset, p->act.min, p->act.max)
                                                      : mcu_requant_s8(acc[c], m, sh, p->output_offset, p->act.min,
                                                                       p->act.max));
                    }
                }
            }
        }
    }
    return MCU_OK;
}
