/*
 * mcu_depthwise_conv2d_s4.c - DEPTHWISE_CONV_2D with int8 activations and packed int4 weights (TFLite's INT4,
 * per output channel), read in place.
 *
 * Arithmetic: reference_integer_ops::DepthwiseConvPerChannel, as TFLite Micro runs an INT4 filter (unpacked to
 * int8 in Prepare): output channel oc = ic * depth_multiplier + m sums (x[ic] + input_offset) * w[tap][oc] over
 * the taps inside the input, plus its bias, then the requantization of mcu_requant.h. Weights (1, kh, kw, output
 * channels) in TFLite's order, two values per byte, low nibble first: tap t's channel oc is value t * cout + oc.
 * Per output pixel the window is clipped to the input once; then each pair of channels (two nibbles of one byte
 * when the channel count is even, as TFLite's channel counts are) runs over the taps with its two accumulators
 * in registers, each nibble sign-extended by shifts.
 */
#include "mcu_kernels.h"
#include "mcu_requant.h"

static inline int32_t mcu_s4_lo(int32_t b) { return (int32_t)((uint32_t)b << 28) >> 28; }

/* Value `index` of the packed weights (TFLite's order). */
static inline int32_t mcu_s4_value(const uint8_t *packed, size_t index)
{
    const int32_t b = (int8_t)packed[index >> 1];
    return (index & 1u) ? (b >> 4) : mcu_s4_lo(b);
}

static inline int8_t mcu_s4_dw_out(const mcu_conv_params *p, int32_t acc, int32_t c)
{
    const int32_t m = p->multiplier[c], sh = p->shift[c];
    return (int8_t)(sh < 0 ? mcu_requant_fast_s8(acc, m, mcu_requant_round(sh), -sh - 1, p->output_offset,
                                                 p->act.min, p->act.max)
                           : mcu_requant_s8(acc, m, sh, p->output_offset, p->act.min, p->act.max));
}

MCU_KERNEL_OPT mcu_status mcu_depthwise_conv2d_s4(const mcu_conv_params *params, const int8_t *input,
                                                  int8_t *output)
{
    const mcu_conv_params *p = params;
    const uint8_t *weights = (const uint8_t *)p->weights;
    const int32_t cin = p->input.c, cout = p->output.c, dm = cin > 0 ? cout / cin : 0;
    const int32_t kh = p->filter.h, kw = p->filter.w, off = p->input_offset;
    int32_t b, oy, ox;
    if (p == NULL || input == NULL || output == NULL || p->weights == NULL || p->multiplier == NULL
        || p->shift == NULL || dm * cin != cout || p->filter.c != cout || p->dilation_h < 1 || p->dilation_w < 1) {
        return MCU_ERROR_ARGUMENT;
    }
    for (b = 0; b < p->output.n; b++) {
        const int8_t *image = input + (size_t)b * p->input.h * p->input.w * cin;
        for (oy = 0; oy < p->output.h; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky0 = 0, ky1 = kh; /* taps [ky0, ky1) inside the input */
            while (ky0 < kh && y0 + ky0 * p->dilation_h < 0) {
                ky0++;
            }
            while (ky1 > ky0 && y0 + (ky1 - 1) * p->dilation_h >= p->input.h) {
                ky1--;
            }
            for (ox = 0; ox < p->output.w; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int8_t *out = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * cout;
                int32_t kx0 = 0, kx1 = kw, c = 0, ky, kx;
                while (kx0 < kw && x0 + kx0 * p->dilation_w < 0) {
                    kx0++;
                }
                while (kx1 > kx0 && x0 + (kx1 - 1) * p->dilation_w >= p->input.w) {
                    kx1--;
                }
                if (dm == 1 && cout % 2 == 0) { /* channels c, c + 1: the two nibbles of one byte per tap */
                    const size_t x_step = (size_t)p->dilation_w * cin, w_step = (size_t)cout / 2;
                    for (; c < cout; c += 2) {
                        int32_t a0 = p->bias32 != NULL ? p->bias32[c] : 0;
                        int32_t a1 = p->bias32 != NULL ? p->bias32[c + 1] : 0;
                        for (ky = ky0; ky < ky1; ky++) {
                            const int8_t *x = image + ((size_t)(y0 + ky * p->dilation_h) * p->input.w
                                                       + (size_t)(x0 + kx0 * p->dilation_w)) * cin + c;
                            const uint8_t *w = weights + (((size_t)ky * kw + (size_t)kx0) * cout + c) / 2;
                            for (kx = kx0; kx < kx1; kx++, x += x_step, w += w_step) {
                                const int32_t v = (int8_t)*w;
                                a0 += (x[0] + off) * mcu_s4_lo(v);
                                a1 += (x[1] + off) * (v >> 4);
                            }
                        }
                        out[c] = mcu_s4_dw_out(p, a0, c);
                        out[c + 1] = mcu_s4_dw_out(p, a1, c + 1);
                    }
                }
                for (; c < cout; c++) { /* any depth multiplier, any channel count */
                    int32_t a = p->bias32 != NULL ? p->bias32[c] : 0;
                    for (ky = ky0; ky < ky1; ky++) {
                        for (kx = kx0; kx < kx1; kx++) {
                            const int32_t iy = y0 + ky * p->dilation_h, ix = x0 + kx * p->dilation_w;
                            const int32_t xv = image[((size_t)iy * p->input.w + ix) * cin + c / dm];
                            a += (xv + off) * mcu_s4_value(weights, ((size_t)ky * kw + kx) * cout + (size_t)c);
                        }
                    }
                    out[c] = mcu_s4_dw_out(p, a, c);
                }
            }
        }
    }
    return MCU_OK;
}
