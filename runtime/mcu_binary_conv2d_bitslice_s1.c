/*
 * mcu_binary_conv2d_bitslice_s1.c - binary conv with bit output, output channels in bit lanes.
 *
 * The XNOR/popcount kernel (mcu_binary_conv2d_s1.c) counts the bits of one output channel at a time. Here
 * the 32 output channels of a word are counted at once, one per bit lane: the weights are stored transposed
 * (weights_t[ocw][tap][c] = bit j of output channel 32 * ocw + j, for input channel c), each input bit x
 * turns a weight column into its mismatch vector (w XOR -x), and a carry-save adder tree (Harley-Seal)
 * accumulates the vectors of 16 inputs at a time into a bit-sliced count (bit planes ones, twos, fours,
 * eights, sixteens -- two 16-input carries per input word -- and a ripple counter of thirty-twos). The count of every lane is then compared with its threshold
 * in bit-sliced form, 32 channels per word operation.
 *
 * Padded taps are gathered as x = +1 (bits 0) like the other kernel; what they add is folded at compile
 * time into the per-lane comparison constant of the pixel's border pattern (pattern = row_class[oy] *
 * col_classes + col_class[ox]): bit = (count >= k[pattern][ocw]) XOR flip, with
 * k = floor((N_all - thr - corr) / 2) + 1 and corr = what the padded taps add to dot (mcutool/codegen/
 * binary_kernels.py). Requires in_c % 32 == 0 and out_c % 32 == 0; mcutool uses the other kernel otherwise.
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

typedef struct {
    uint32_t ones, twos, fours, eights;
} mcu_planes;

/* Adds the 16 mismatch vectors w[i] XOR -(bit i of x) to the planes; returns the carry into sixteens. */
MCU_BINARY_INLINE uint32_t add16(mcu_planes *p, uint32_t x, const uint32_t *w)
{
    uint32_t twos_a, twos_b, fours_a, fours_b, eights_a, eights_b, sixteens;
    CSA(twos_a, p->ones, p->ones, w[0] ^ MASK_OF_BIT(x, 0), w[1] ^ MASK_OF_BIT(x, 1));
    CSA(twos_b, p->ones, p->ones, w[2] ^ MASK_OF_BIT(x, 2), w[3] ^ MASK_OF_BIT(x, 3));
    CSA(fours_a, p->twos, p->twos, twos_a, twos_b);
    CSA(twos_a, p->ones, p->ones, w[4] ^ MASK_OF_BIT(x, 4), w[5] ^ MASK_OF_BIT(x, 5));
    CSA(twos_b, p->ones, p->ones, w[6] ^ MASK_OF_BIT(x, 6), w[7] ^ MASK_OF_BIT(x, 7));
    CSA(fours_b, p->twos, p->twos, twos_a, twos_b);
    CSA(eights_a, p->fours, p->fours, fours_a, fours_b);
    CSA(twos_a, p->ones, p->ones, w[8] ^ MASK_OF_BIT(x, 8), w[9] ^ MASK_OF_BIT(x, 9));
    CSA(twos_b, p->ones, p->ones, w[10] ^ MASK_OF_BIT(x, 10), w[11] ^ MASK_OF_BIT(x, 11));
    CSA(fours_a, p->twos, p->twos, twos_a, twos_b);
    CSA(twos_a, p->ones, p->ones, w[12] ^ MASK_OF_BIT(x, 12), w[13] ^ MASK_OF_BIT(x, 13));
    CSA(twos_b, p->ones, p->ones, w[14] ^ MASK_OF_BIT(x, 14), w[15] ^ MASK_OF_BIT(x, 15));
    CSA(fours_b, p->twos, p->twos, twos_a, twos_b);
    CSA(eights_b, p->fours, p->fours, fours_a, fours_b);
    CSA(sixteens, p->eights, p->eights, eights_a, eights_b);
    return sixteens;
}

MCU_KERNEL_OPT mcu_status mcu_binary_conv2d_bitslice_s1(const mcu_binary_conv2d_bitslice_params *params,
                                                        const uint32_t *input, uint32_t *output)
{
    uint32_t window[MCU_BINARY_MAX_WINDOW];
    uint32_t count[MCU_BINARY_MAX_PLANES];
    int32_t b, oy, ox, ocw, t, c, i, ky, kx;


    if (params == NULL || input == NULL || output == NULL || params->weights_t == NULL || params->k == NULL ||
        params->flip == NULL || params->row_class == NULL || params->col_class == NULL ||
        params->input.c % 32 != 0 || params->output.c % 32 != 0 || params->planes < 5 ||
        params->planes > MCU_BINARY_MAX_PLANES || params->stride_h <= 0 || params->stride_w <= 0 ||
        params->filter_h * params->filter_w * mcu_packed_words(params->input.c) > MCU_BINARY_MAX_WINDOW) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_binary_conv2d_bitslice_params *p = params;
        const int32_t in_c = p->input.c;
        const int32_t words = mcu_packed_words(in_c);
        const int32_t taps = p->filter_h * p->filter_w;
        const int32_t out_words = p->output.c / 32;
        const int32_t planes = p->planes;
        for (b = 0; b < p->output.n; b++) {
            const uint32_t *in_b = input + (size_t)b * p->input.h * p->input.w * words;
            for (oy = 0; oy < p->output.h; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                for (ox = 0; ox < p->output.w; ox++) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    const int32_t pattern = p->row_class[oy] * p->col_classes + p->col_class[ox];
                    uint32_t *o = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * out_words;
                    uint32_t *dst = window;
                    for (ky = 0; ky < p->filter_h; ky++) {
                        const int32_t iy = y0 + ky;
                        for (kx = 0; kx < p->filter_w; kx++, dst += words) {
                            const int32_t ix = x0 + kx;
                            const int valid = iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w;
                            const uint32_t *src = valid ? in_b + ((size_t)iy * p->input.w + ix) * words : in_b;
                            for (i = 0; i < words; i++) {
                                dst[i] = valid ? src[i] : 0u;
                            }
                        }
                    }
                    for (ocw = 0; ocw < out_words; ocw++) {
                        const uint32_t *w = p->weights_t + (size_t)ocw * taps * in_c;
                        const uint32_t *k = p->k + ((size_t)pattern * out_words + ocw) * planes;
                        mcu_planes acc = {0u, 0u, 0u, 0u};
                        uint32_t sixteens = 0u, borrow = 0u;
                        for (i = 5; i < planes; i++) {
                            count[i] = 0u;
                        }
                        for (t = 0; t < taps; t++) {
                            const uint32_t *x = window + t * words;
                            for (c = 0; c < words; c++, w += 32) {
                                const uint32_t s_a = add16(&acc, x[c], w);
                                const uint32_t s_b = add16(&acc, x[c] >> 16, w + 16);
                                uint32_t carry;
                                CSA(carry, sixteens, sixteens, s_a, s_b);
                                for (i = 5; i < planes; i++) {
                                    const uint32_t next = count[i] & carry;
                                    count[i] ^= carry;
                                    carry = next;
                                }
                            }
                        }
                        count[0] = acc.ones;
                        count[1] = acc.twos;
                        count[2] = acc.fours;
                        count[3] = acc.eights;
                        count[4] = sixteens;
                        /* lanes where count < k borrow out of count - k */
                        for (i = 0; i < planes; i++) {
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
