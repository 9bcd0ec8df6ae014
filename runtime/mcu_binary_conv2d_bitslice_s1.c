/*
 * mcu_binary_conv2d_bitslice_s1.c - binary conv with output channels in bit lanes (mcu_binary.h).
 *
 * The XNOR/popcount kernels (mcu_binary_conv2d_s1.c) count the bits of one output channel at a time. Here
 * the 32 output channels of a word are counted at once, one per bit lane: the weights are stored transposed
 * (weights_t[ocw][tap][c] = bit j of output channel 32 * ocw + j, for input channel c), each input bit x
 * turns a weight column into its mismatch vector (w XOR -x), and a carry-save adder tree (Harley-Seal)
 * accumulates the vectors of 16 inputs at a time into a bit-sliced count: planes ones, twos, fours, eights,
 * sixteens (two 16-input carries per input word) and half adders above, 12 planes (counts < 4096).
 *
 * Padded taps are gathered as x = +1 (bits 0); what they add to dot is folded at compile time into per
 * border pattern constants (pattern = row_class[oy] * col_classes + col_class[ox]; mcutool/codegen/
 * binary_kernels.py derives them from the op's thresholds or bias):
 *   mcu_binary_conv2d_bitslice_s1:    bit = (count >= k[pattern][ocw]) XOR flip, compared bit-sliced,
 *                                     32 channels per word operation;
 *   mcu_binary_conv2d_bitslice_s1_s8: acc = bias_p[pattern][oc] - 2 * count, requantized per channel (each
 *                                     lane's count is read back from the planes).
 * Requires in_c % 32 == 0, out_c % 32 == 0 and kh * kw * in_c < 4095; mcutool uses the other kernels otherwise.
 */
#include "mcu_binary.h"
#include "mcu_requant.h"

#define MASK_OF_BIT(x, i) ((uint32_t)(((int32_t)((x) << (31 - (i)))) >> 31))
#define CSA(h, l, a, b, c)            \
    do {                              \
        const uint32_t u_ = (a) ^ (b); \
        h = ((a) & (b)) | (u_ & (c)); \
        l = u_ ^ (c);                 \
    } while (0)

/* Adds the 16 mismatch vectors w[i] XOR -(bit o + i of x) to the planes (ones, twos, fours, eights);
 * `sixteens` receives the carry out of eights. */
#define ADD16(x, o, w, sixteens)                                                              \
    do {                                                                                  \
        uint32_t ta_, tb_, fa_, fb_, ea_, eb_;                                            \
        CSA(ta_, ones, ones, (w)[0] ^ MASK_OF_BIT(x, (o) + 0), (w)[1] ^ MASK_OF_BIT(x, (o) + 1));     \
        CSA(tb_, ones, ones, (w)[2] ^ MASK_OF_BIT(x, (o) + 2), (w)[3] ^ MASK_OF_BIT(x, (o) + 3));     \
        CSA(fa_, twos, twos, ta_, tb_);                                                   \
        CSA(ta_, ones, ones, (w)[4] ^ MASK_OF_BIT(x, (o) + 4), (w)[5] ^ MASK_OF_BIT(x, (o) + 5));     \
        CSA(tb_, ones, ones, (w)[6] ^ MASK_OF_BIT(x, (o) + 6), (w)[7] ^ MASK_OF_BIT(x, (o) + 7));     \
        CSA(fb_, twos, twos, ta_, tb_);                                                   \
        CSA(ea_, fours, fours, fa_, fb_);                                                 \
        CSA(ta_, ones, ones, (w)[8] ^ MASK_OF_BIT(x, (o) + 8), (w)[9] ^ MASK_OF_BIT(x, (o) + 9));     \
        CSA(tb_, ones, ones, (w)[10] ^ MASK_OF_BIT(x, (o) + 10), (w)[11] ^ MASK_OF_BIT(x, (o) + 11)); \
        CSA(fa_, twos, twos, ta_, tb_);                                                   \
        CSA(ta_, ones, ones, (w)[12] ^ MASK_OF_BIT(x, (o) + 12), (w)[13] ^ MASK_OF_BIT(x, (o) + 13)); \
        CSA(tb_, ones, ones, (w)[14] ^ MASK_OF_BIT(x, (o) + 14), (w)[15] ^ MASK_OF_BIT(x, (o) + 15)); \
        CSA(fb_, twos, twos, ta_, tb_);                                                   \
        CSA(eb_, fours, fours, fa_, fb_);                                                 \
        CSA(sixteens, eights, eights, ea_, eb_);                                          \
    } while (0)

/* Half adder of a carry vector into a plane. */
#define RIPPLE(plane, carry)                  \
    do {                                      \
        const uint32_t n_ = (plane) & (carry); \
        (plane) ^= (carry);                   \
        (carry) = n_;                         \
    } while (0)

/* The bit-sliced mismatch count of one output-channel word over a gathered window of n_words input words
 * (32 inputs each): planes[i] = bit i of every lane's count, i < MCU_BINARY_BITSLICE_PLANES (12). Kept out
 * of line so that only its own state competes for registers. */
static MCU_BINARY_OPT __attribute__((noinline)) void count_planes(const uint32_t *window, int32_t n_words,
                                                                    const uint32_t *w, uint32_t *planes)
{
    uint32_t ones = 0u, twos = 0u, fours = 0u, eights = 0u;
    const uint32_t *const end = window + n_words;
    int32_t i;
    /* planes 4.. are updated in memory through `planes` (once per input word), which leaves the registers to
     * the adder tree */
    for (i = 4; i < MCU_BINARY_BITSLICE_PLANES; i++) {
        planes[i] = 0u;
    }
    for (; window < end; window++, w += 32) {
        const uint32_t x = *window;
        uint32_t s_a, s_b, carry;
        ADD16(x, 0, w, s_a);
        ADD16(x, 16, w + 16, s_b);
        CSA(carry, planes[4], planes[4], s_a, s_b);
        RIPPLE(planes[5], carry);
        RIPPLE(planes[6], carry);
        RIPPLE(planes[7], carry);
        RIPPLE(planes[8], carry);
        RIPPLE(planes[9], carry);
        RIPPLE(planes[10], carry);
        planes[11] ^= carry;
    }
    planes[0] = ones;
    planes[1] = twos;
    planes[2] = fours;
    planes[3] = eights;
}

/* The window of the output pixel whose input origin is (y0, x0); padded taps are zero words (+1). */
MCU_BINARY_INLINE void gather(const mcu_binary_conv2d_bitslice_params *p, const uint32_t *in_b, int32_t y0,
                              int32_t x0, int32_t words, uint32_t *dst)
{
    int32_t ky, kx, i;
    for (ky = 0; ky < p->filter_h; ky++) {
        const int32_t iy = y0 + ky;
        for (kx = 0; kx < p->filter_w; kx++) {
            const int32_t ix = x0 + kx;
            if (iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w) {
                const uint32_t *src = in_b + ((size_t)iy * p->input.w + ix) * words;
                for (i = 0; i < words; i++) {
                    *dst++ = src[i];
                }
            } else {
                for (i = 0; i < words; i++) {
                    *dst++ = 0u;
                }
            }
        }
    }
}

static int bad_params(const mcu_binary_conv2d_bitslice_params *p, const void *input, const void *output)
{
    return p == NULL || input == NULL || output == NULL || p->weights_t == NULL || p->row_class == NULL ||
           p->col_class == NULL || p->input.c % 32 != 0 || p->output.c % 32 != 0 || p->stride_h <= 0 ||
           p->stride_w <= 0 || p->filter_h * p->filter_w * (p->input.c / 32) > MCU_BINARY_MAX_WINDOW;
}

MCU_BINARY_OPT mcu_status mcu_binary_conv2d_bitslice_s1(const mcu_binary_conv2d_bitslice_params *params,
                                                          const uint32_t *input, uint32_t *output)
{
    uint32_t window[MCU_BINARY_MAX_WINDOW];
    uint32_t count[MCU_BINARY_BITSLICE_PLANES];
    int32_t b, oy, ox, ocw, i;

    if (bad_params(params, input, output) || params->k == NULL || params->flip == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_binary_conv2d_bitslice_params *p = params;
        const int32_t words = p->input.c / 32;
        const int32_t n_words = p->filter_h * p->filter_w * words;
        const int32_t out_words = p->output.c / 32;
        for (b = 0; b < p->output.n; b++) {
            const uint32_t *in_b = input + (size_t)b * p->input.h * p->input.w * words;
            for (oy = 0; oy < p->output.h; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                for (ox = 0; ox < p->output.w; ox++) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    const int32_t pattern = p->row_class[oy] * p->col_classes + p->col_class[ox];
                    uint32_t *o = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * out_words;
                    gather(p, in_b, y0, x0, words, window);
                    for (ocw = 0; ocw < out_words; ocw++) {
                        const uint32_t *k = p->k + ((size_t)pattern * out_words + ocw) * MCU_BINARY_BITSLICE_PLANES;
                        uint32_t borrow = 0u;
                        count_planes(window, n_words, p->weights_t + (size_t)ocw * n_words * 32, count);
                        /* lanes where count < k borrow out of count - k */
                        for (i = 0; i < MCU_BINARY_BITSLICE_PLANES; i++) {
                            borrow = (~count[i] & k[i]) | (~(count[i] ^ k[i]) & borrow);
                        }
                        o[ocw] = ~borrow ^ p->flip[ocw];
                    }
                }
            }
        }
    }
    return MCU_OK;
}

/* int8 output: dot = N_all - 2 * count - corr[pattern][oc]; bias_p[pattern][oc] = bias[oc] + N_all -
 * corr[pattern][oc] (compile time), so acc = bias_p - 2 * count, requantized per channel. Each lane's count is
 * read back from the planes. */
MCU_BINARY_OPT mcu_status mcu_binary_conv2d_bitslice_s1_s8(const mcu_binary_conv2d_bitslice_params *params,
                                                             const uint32_t *input, int8_t *output)
{
    uint32_t window[MCU_BINARY_MAX_WINDOW];
    uint32_t count[MCU_BINARY_BITSLICE_PLANES];
    int32_t b, oy, ox, ocw, i, j;

    if (bad_params(params, input, output) || params->bias_p == NULL || params->quant == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_binary_conv2d_bitslice_params *p = params;
        const int32_t words = p->input.c / 32;
        const int32_t n_words = p->filter_h * p->filter_w * words;
        const int32_t out_c = p->output.c;
        for (b = 0; b < p->output.n; b++) {
            const uint32_t *in_b = input + (size_t)b * p->input.h * p->input.w * words;
            for (oy = 0; oy < p->output.h; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                for (ox = 0; ox < p->output.w; ox++) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    const int32_t pattern = p->row_class[oy] * p->col_classes + p->col_class[ox];
                    const int32_t *bias = p->bias_p + (size_t)pattern * out_c;
                    int8_t *o = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * out_c;
                    gather(p, in_b, y0, x0, words, window);
                    for (ocw = 0; ocw < out_c / 32; ocw++) {
                        count_planes(window, n_words, p->weights_t + (size_t)ocw * n_words * 32, count);
                        for (j = 0; j < 32; j++) {
                            const int32_t oc = ocw * 32 + j;
                            int32_t n = 0;
                            for (i = MCU_BINARY_BITSLICE_PLANES - 1; i >= 0; i--) {
                                n = (n << 1) | (int32_t)((count[i] >> j) & 1u);
                            }
                            n = mcu_requantize(bias[oc] - 2 * n, p->quant[oc].multiplier, p->quant[oc].shift) +
                                p->output_offset;
                            o[oc] = (int8_t)mcu_clamp_i32(n, p->act.min, p->act.max);
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}
