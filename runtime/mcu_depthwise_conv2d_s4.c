/*
 * mcu_depthwise_conv2d_s4.c - DEPTHWISE_CONV_2D with int8 activations and packed int4 weights (TFLite's INT4,
 * per output channel), read in place.
 *
 * Arithmetic: reference_integer_ops::DepthwiseConvPerChannel, as TFLite Micro runs an INT4 filter (unpacked to
 * int8 in Prepare): output channel oc = ic * depth_multiplier + m sums (x[ic] + input_offset) * w[tap][oc] over
 * the taps inside the input, plus its bias, then mcu_requant_s8. Weights (1, kh, kw, output channels) in TFLite's
 * order, two values per byte, low nibble first: tap t's channel oc is value t * cout + oc. Channels go in
 * blocks of MCU_S4_DW_BLOCK, their int32 accumulators on the stack; within a tap, two channels share a byte
 * (when the tap's first value starts a byte), each nibble sign-extended by shifts.
 */
#include "mcu_kernels.h"
#include "mcu_requant.h"

#define MCU_S4_DW_BLOCK 64

MCU_KERNEL_OPT mcu_status mcu_depthwise_conv2d_s4(const mcu_conv_params *params, const int8_t *input,
                                                  int8_t *output)
{
    const mcu_conv_params *p = params;
    const uint8_t *weights = (const uint8_t *)p->weights;
    const int32_t cin = p->input.c, cout = p->output.c, dm = cin > 0 ? cout / cin : 0;
    const int32_t kh = p->filter.h, kw = p->filter.w;
    int32_t acc[MCU_S4_DW_BLOCK];
    int32_t b, oy, ox;
    if (p == NULL || input == NULL || output == NULL || p->weights == NULL
        || p->multiplier == NULL || p->shift == NULL || dm * cin != cout || p->filter.c != cout) {
        return MCU_ERROR_ARGUMENT;
    }
    for (b = 0; b < p->output.n; b++) {
        const int8_t *image = input + (size_t)b * p->input.h * p->input.w * cin;
        for (oy = 0; oy < p->output.h; oy++) {
            for (ox = 0; ox < p->output.w; ox++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
                int8_t *out = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * cout;
                int32_t c0;
                for (c0 = 0; c0 < cout; c0 += MCU_S4_DW_BLOCK) {
                    const int32_t nc = cout - c0 < MCU_S4_DW_BLOCK ? cout - c0 : MCU_S4_DW_BLOCK;
                    int32_t c, ky, kx;
                    for (c = 0; c < nc; c++) {
                        acc[c] = p->bias32 != NULL ? p->bias32[c0 + c] : 0;
                    }
                    for (ky = 0; ky < kh; ky++) {
                        const int32_t iy = y0 + ky * p->dilation_h;
                        if (iy < 0 || iy >= p->input.h) {
                            continue;
                        }
                        for (kx = 0; kx < kw; kx++) {
                            const int32_t ix = x0 + kx * p->dilation_w;
                            const int8_t *x;
                            const size_t e = ((size_t)ky * kw + kx) * cout + c0; /* value index of channel c0 */
                            if (ix < 0 || ix >= p->input.w) {
                                continue;
                            }
                            x = image + ((size_t)iy * p->input.w + ix) * cin;
                            c = 0;
                            if (dm == 1 && (e & 1u) == 0) { /* two channels a byte */
                                const uint8_t *w = weights + e / 2;
                                for (; c + 1 < nc; c += 2, w++) {
                                    const int32_t v = (int8_t)*w;
                                    acc[c] += (x[c0 + c] + p->input_offset) * ((int32_t)((uint32_t)v << 28) >> 28);
                                    acc[c + 1] += (x[c0 + c + 1] + p->input_offset) * (v >> 4);
                                }
                            }
                            for (; c < nc; c++) {
                                const size_t i = e + (size_t)c;
                                const int32_t v = (int8_t)weights[i >> 1];
                                const int32_t wv = (i & 1u) ? (v >> 4) : ((int32_t)((uint32_t)v << 28) >> 28);
                                acc[c] += (x[(c0 + c) / dm] + p->input_offset) * wv;
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
