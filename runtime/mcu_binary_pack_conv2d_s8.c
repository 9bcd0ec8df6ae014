/*
 * mcu_binary_pack_conv2d_s8.c - the fused first layer of a binary network: int8 conv + BatchNorm + Sign +
 * bit packing. acc = bias[oc] + sum over the valid taps of (x + input_offset) * w (padding contributes 0,
 * as in TFLite's int8 conv); bit oc = acc < thresholds[oc]. The int8 output never exists: on a 16 KB core a
 * 32x32x32 int8 activation (32 KB) could not, its packed form takes 4 KB. Portable C.
 */
#include "mcu_binary.h"
#include "mcu_requant.h"

MCU_KERNEL_OPT mcu_status mcu_binary_pack_conv2d_s8(const mcu_binary_pack_conv2d_params *params,
                                                    const int8_t *input, uint32_t *output)
{
    int32_t b, oy, ox, oc, ky, ic;

    if (params == NULL || input == NULL || output == NULL || params->weights == NULL || params->bias == NULL ||
        params->thresholds == NULL || params->stride_h <= 0 || params->stride_w <= 0) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims in = params->input;
        const mcu_dims out = params->output;
        const int32_t out_words = mcu_packed_words(out.c);
        const int32_t w_per_oc = params->filter_h * params->filter_w * in.c;
        for (b = 0; b < out.n; b++) {
            const int8_t *in_b = input + (size_t)b * in.h * in.w * in.c;
            for (oy = 0; oy < out.h; oy++) {
                const int32_t y0 = oy * params->stride_h - params->pad_top;
                const int32_t ky0 = y0 < 0 ? -y0 : 0;
                const int32_t ky1 = params->filter_h < in.h - y0 ? params->filter_h : in.h - y0;
                for (ox = 0; ox < out.w; ox++) {
                    const int32_t x0 = ox * params->stride_w - params->pad_left;
                    const int32_t kx0 = x0 < 0 ? -x0 : 0;
                    const int32_t kx1 = params->filter_w < in.w - x0 ? params->filter_w : in.w - x0;
                    const int32_t run = (kx1 - kx0) * in.c;
                    uint32_t *o = output + (((size_t)b * out.h + oy) * out.w + ox) * out_words;
                    const int8_t *w_oc = params->weights;
                    uint32_t word = 0u;
                    for (oc = 0; oc < out.c; oc++, w_oc += w_per_oc) {
                        int32_t acc = params->bias[oc];
                        for (ky = ky0; ky < ky1; ky++) {
                            const int8_t *x = in_b + ((size_t)(y0 + ky) * in.w + (x0 + kx0)) * in.c;
                            const int8_t *w = w_oc + ((size_t)ky * params->filter_w + kx0) * in.c;
                            for (ic = 0; ic < run; ic++) {
                                acc += ((int32_t)x[ic] + params->input_offset) * (int32_t)w[ic];
                            }
                        }
                        word |= (uint32_t)(acc < params->thresholds[oc]) << (oc & 31);
                        if ((oc & 31) == 31 || oc == out.c - 1) {
                            o[oc >> 5] = word;
                            word = 0u;
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}
