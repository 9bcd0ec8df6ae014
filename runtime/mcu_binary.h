/*
 * mcu_binary.h - mcutool's binary (1-bit) kernels: XNOR/popcount convolution on packed bits (DESIGN.md §8).
 *
 * Packed tensors: values in {-1, +1}, 32 channels per uint32 along the channel axis, value -1 = bit 1
 * (Larq's convention), channel c = bit c % 32 of word c / 32, unused high bits of the last word 0. A packed
 * NHWC tensor with C channels is (N, H, W, words) uint32 with words = (C + 31) / 32; mcu_dims.c holds C.
 * The exact integer semantics of every kernel is the numpy reference (mcutool/reference.py, "binary"):
 *
 *   dot[oc]  = sum over the valid taps of (in_c - 2 * popcount(x XOR w))  (padded taps are skipped: what a
 *              zero-padded float conv computes, the Larq "0-correction" done by counting valid taps)
 *   bits out : bit = (dot < thresholds[oc]) XOR flip bit oc      (BatchNorm + Sign folded)
 *   int8 out : clamp(MultiplyByQuantizedMultiplier(dot + bias[oc], quant[oc]) + output_offset)
 *
 * Popcount: Cortex-M and RV32IMAC have no popcount instruction (GCC turns __builtin_popcount into a libgcc
 * call, __popcountsi2, on both), so a SWAR bit trick counts bits per nibble, then per byte, and accumulates
 * byte lanes across up to 30 words before one horizontal sum.
 *
 * C99, freestanding, no heap, no floating point.
 */
#ifndef MCU_BINARY_H
#define MCU_BINARY_H

#include <stdint.h>

#include "mcu_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* int8 -> bits: bit = (x < zero_point), i.e. the sign of the real value with Sign(0) = +1. */
typedef struct {
    mcu_dims input;   /* c = channels */
    int32_t zero_point;
} mcu_binary_pack_params;

mcu_status mcu_binary_pack_s8(const mcu_binary_pack_params *params, const int8_t *input, uint32_t *output);

/* int8 conv + BatchNorm + Sign + packing (the first layer): acc = sum (x + input_offset) * w + bias[oc];
 * bit = acc < thresholds[oc]. Weights (out_c, kh, kw, in_c) int8. Output packed.
 * kh * kw * in_c <= MCU_BINARY_MAX_PATCH (the window is gathered on the stack). */
#define MCU_BINARY_MAX_PATCH 512
#define MCU_BINARY_SMALL_PATCH 12 /* first layers of 1 or 3 channels with 3x3 / 2x2 windows: the unrolled path */
typedef struct {
    mcu_dims input;
    mcu_dims output;   /* c = output channels */
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t input_offset;
    const int8_t *weights;
    const int16_t *weights16;  /* kh * kw * in_c <= MCU_BINARY_SMALL_PATCH: (out_c, 12) int16, zero-padded; else NULL */
    const int32_t *bias;
    const int32_t *thresholds;
} mcu_binary_pack_conv2d_params;

mcu_status mcu_binary_pack_conv2d_s8(const mcu_binary_pack_conv2d_params *params, const int8_t *input,
                                     uint32_t *output);

/* binary conv: packed input, packed weights (out_c, kh, kw, in_words). Bits output when thresholds is set,
 * else int8 output (bias, per-channel quant, output_offset, act). The kernels gather each window with padded
 * taps as +1 (bits 0) and subtract what those taps added (popcount of their weights: the Larq
 * "0-correction"), so interior pixels need no correction. kh * kw * in_words <= MCU_BINARY_MAX_WINDOW. */
#define MCU_BINARY_MAX_WINDOW 128
typedef struct {
    mcu_dims input;    /* c = input channels */
    mcu_dims output;   /* c = output channels */
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;
    int32_t pad_left;
    const uint32_t *weights;
    const int32_t *thresholds; /* bits output */
    const uint32_t *flip;      /* bits output: packed, one bit per output channel */
    const int32_t *bias;       /* int8 output: in dot units */
    const mcu_quant *quant;    /* int8 output: alpha[oc] / s_out */
    int32_t output_offset;
    mcu_activation act;
} mcu_binary_conv2d_params;

mcu_status mcu_binary_conv2d_s1(const mcu_binary_conv2d_params *params, const uint32_t *input, uint32_t *output);
mcu_status mcu_binary_conv2d_s1_s8(const mcu_binary_conv2d_params *params, const uint32_t *input, int8_t *output);

/* binary conv with bit output, output channels in bit lanes (mcu_binary_conv2d_bitslice_s1.c): in_c % 32 == 0,
 * out_c % 32 == 0. tables[ocw][n][g][plane][v] (n = tap * in_c / 32 + c / 32, g = c % 32 / 4): bit j = bit `plane`
 * of the number of output channel 32 * ocw + j's weights that differ from input bits 4g..4g+3 of value v. A pixel's
 * border pattern is row_class[oy] * col_classes + col_class[ox]; k[pattern][ocw][plane] holds, bit-sliced
 * over MCU_BINARY_BITSLICE_PLANES planes, the per-channel count of mismatches at and above which the output
 * bit is 1 (before flip). */
#define MCU_BINARY_BITSLICE_PLANES 12 /* counts up to 4095: kh * kw * in_c < 4095 */
#define MCU_BINARY_BITSLICE_TABLE 384 /* table words per input word: 8 groups x 3 planes x 16 values */
typedef struct {
    mcu_dims input;    /* c = input channels */
    mcu_dims output;   /* c = output channels */
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t col_classes;
    const uint32_t *tables;
    const uint8_t *row_class;
    const uint8_t *col_class;
    const uint32_t *k;         /* bits output */
    const uint32_t *flip;      /* bits output */
    const int32_t *bias_p;     /* int8 output: [pattern][out_c], bias + N_all - what the pattern's pads add */
    const mcu_quant *quant;    /* int8 output */
    int32_t output_offset;     /* int8 output */
    mcu_activation act;        /* int8 output */
} mcu_binary_conv2d_bitslice_params;

mcu_status mcu_binary_conv2d_bitslice_s1(const mcu_binary_conv2d_bitslice_params *params, const uint32_t *input,
                                         uint32_t *output);
mcu_status mcu_binary_conv2d_bitslice_s1_s8(const mcu_binary_conv2d_bitslice_params *params,
                                            const uint32_t *input, int8_t *output);

/* binary max pool: AND of the packed words over the valid window positions. */
typedef struct {
    mcu_dims input;    /* c = channels */
    mcu_dims output;
    int32_t filter_h;
    int32_t filter_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;
    int32_t pad_left;
} mcu_binary_pool_params;

mcu_status mcu_binary_max_pool2d_s1(const mcu_binary_pool_params *params, const uint32_t *input,
                                    uint32_t *output);

static inline int32_t mcu_packed_words(int32_t channels) { return (channels + 31) / 32; }

/* Optimization of the binary kernels: O3, without turning their small gather loops into memset/memcpy calls
 * (a call per 1-word tap costs more than the copy), without pre-allocation scheduling (it raised register
 * pressure into spills in the carry-save adder trees) and without vectorizing (on a core with an FPU, GCC
 * moves 64-bit blocks through VFP registers, and the firmware must hold no floating-point instruction). */
#if defined(__GNUC__) && !defined(__clang__)
#define MCU_BINARY_OPT \
    __attribute__((optimize("O3", "no-tree-loop-distribute-patterns", "no-schedule-insns", "no-tree-vectorize")))
#else
#define MCU_BINARY_OPT
#endif

#if defined(__GNUC__)
#define MCU_BINARY_INLINE static inline __attribute__((always_inline))
#else
#define MCU_BINARY_INLINE static inline
#endif

/* Bits set per nibble of v (each 0..4). */
MCU_BINARY_INLINE uint32_t mcu_popcount_nibbles(uint32_t v)
{
    v = v - ((v >> 1) & 0x55555555u);
    return (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
}

/* Sum of the four byte lanes of v (each 0..255). */
MCU_BINARY_INLINE uint32_t mcu_sum_bytes(uint32_t v)
{
    v = (v & 0x00FF00FFu) + ((v >> 8) & 0x00FF00FFu);
    return (v + (v >> 16)) & 0xFFFFu;
}

/* popcount of a[0..n) (border corrections: not on the hot path). */
MCU_BINARY_INLINE uint32_t mcu_popcount_words(const uint32_t *a, int32_t n)
{
    uint32_t total = 0u;
    int32_t i;
    for (i = 0; i < n; i++) {
        const uint32_t s = mcu_popcount_nibbles(a[i]);
        total += mcu_sum_bytes((s & 0x0F0F0F0Fu) + ((s >> 4) & 0x0F0F0F0Fu));
    }
    return total;
}

/* popcount of (a[i] XOR b[i]) summed over n words: two words share one nibble step (nibbles <= 8), nibbles
 * fold into byte lanes (<= 16 per pair), lanes accumulate over up to 30 words before one horizontal sum. */
MCU_BINARY_INLINE uint32_t mcu_popcount_xor(const uint32_t *a, const uint32_t *b, int32_t n)
{
    uint32_t total = 0u;
    while (n > 0) {
        const int32_t m = n < 30 ? n : 30;
        uint32_t lanes = 0u;
        int32_t i = 0;
        for (; i + 1 < m; i += 2) {
            const uint32_t s = mcu_popcount_nibbles(a[i] ^ b[i]) + mcu_popcount_nibbles(a[i + 1] ^ b[i + 1]);
            lanes += (s & 0x0F0F0F0Fu) + ((s >> 4) & 0x0F0F0F0Fu);
        }
        if (i < m) {
            const uint32_t s = mcu_popcount_nibbles(a[i] ^ b[i]);
            lanes += (s & 0x0F0F0F0Fu) + ((s >> 4) & 0x0F0F0F0Fu);
        }
        total += mcu_sum_bytes(lanes);
        a += m;
        b += m;
        n -= m;
    }
    return total;
}

#ifdef __cplusplus
}
#endif

#endif /* MCU_BINARY_H */
