/*
 * mcu_binary_pack_conv2d_s8.c - the fused first layer of a binary network: int8 conv + BatchNorm + Sign +
 * bit packing. acc = bias[oc] + sum over the taps of (x + input_offset) * w, padded taps contributing 0 (as
 * in TFLite's int8 conv); bit oc = acc < thresholds[oc]. The int8 output never exists: on a 16 KB core a
 * 32x32x32 int8 activation (32 KB) could not, its packed form takes 4 KB.
 * Each window is gathered into a contiguous patch (padded taps hold the zero point, so x + offset = 0) and
 * four output channels at a time take a dot product with it (mcu_dot4_s8: SMLAD on cores with the DSP
 * extension, the plain loop elsewhere). Small windows (kh * kw * in_c <= 12: a grayscale or RGB first layer)
 * take an unrolled path instead: the patch, offset applied, stays in registers as six int16 pairs and each
 * output channel is six SMLAD (or twelve multiply-adds) against its weights pre-widened to int16.
 */
#include "mcu_binary.h"
#include "mcu_dot_s8.h"
#include "mcu_requant.h"

/* Gather the window of output pixel (oy, ox) into patch (kh * kw * in_c int8). */
MCU_BINARY_INLINE void gather_patch(const mcu_binary_pack_conv2d_params *p, const int8_t *in_b, int32_t oy,
                                    int32_t ox, int8_t *patch)
{
    const int32_t c = p->input.c;
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    const int8_t pad = (int8_t)(-p->input_offset);
    int32_t ky, kx, i;
    for (ky = 0; ky < p->filter_h; ky++) {
        const int32_t iy = y0 + ky;
        for (kx = 0; kx < p->filter_w; kx++, patch += c) {
            const int32_t ix = x0 + kx;
            const int valid = iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w;
            const int8_t *src = valid ? in_b + ((size_t)iy * p->input.w + ix) * c : in_b;
            for (i = 0; i < c; i++) {
                patch[i] = valid ? src[i] : pad;
            }
        }
    }
}

/* The small-window path: patch values (x + offset, 0 for padded taps and beyond k) times int16 weights. */
MCU_BINARY_INLINE void small_patch(const mcu_binary_pack_conv2d_params *p, const int8_t *in_b, int32_t y0,
                                   int32_t x0, int32_t *v)
{
    const int32_t c = p->input.c;
    int32_t ky, kx, i, n = 0;
    for (i = 0; i < MCU_BINARY_SMALL_PATCH; i++) {
        v[i] = 0;
    }
    for (ky = 0; ky < p->filter_h; ky++) {
        const int32_t iy = y0 + ky;
        for (kx = 0; kx < p->filter_w; kx++, n += c) {
            const int32_t ix = x0 + kx;
            if (iy >= 0 && iy < p->input.h && ix >= 0 && ix < p->input.w) {
                const int8_t *src = in_b + ((size_t)iy * p->input.w + ix) * c;
                for (i = 0; i < c; i++) {
                    v[n + i] = (int32_t)src[i] + p->input_offset;
                }
            }
        }
    }
}

static MCU_BINARY_OPT void pack_conv_small(const mcu_binary_pack_conv2d_params *p, const int8_t *input,
                                           uint32_t *output)
{
    int32_t v[MCU_BINARY_SMALL_PATCH];
    int32_t b, oy, ox, oc;
    const mcu_dims in = p->input;
    const mcu_dims out = p->output;
    const int32_t out_words = mcu_packed_words(out.c);
    for (b = 0; b < out.n; b++) {
        const int8_t *in_b = input + (size_t)b * in.h * in.w * in.c;
        for (oy = 0; oy < out.h; oy++) {
            for (ox = 0; ox < out.w; ox++) {
                uint32_t *o = output + (((size_t)b * out.h + oy) * out.w + ox) * out_words;
                const int16_t *w = p->weights16;
                uint32_t word = 0u;
                small_patch(p, in_b, oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left, v);
#if MCU_DOT_SIMD32
                {
                    /* (x + offset) is in [-255, 255] and w in [-128, 127]: exact in SMLAD's int16 lanes */
                    const int16x2_t v01 = (int16x2_t)(((uint32_t)v[0] & 0xFFFFu) | ((uint32_t)v[1] << 16));
                    const int16x2_t v23 = (int16x2_t)(((uint32_t)v[2] & 0xFFFFu) | ((uint32_t)v[3] << 16));
                    const int16x2_t v45 = (int16x2_t)(((uint32_t)v[4] & 0xFFFFu) | ((uint32_t)v[5] << 16));
                    const int16x2_t v67 = (int16x2_t)(((uint32_t)v[6] & 0xFFFFu) | ((uint32_t)v[7] << 16));
                    const int16x2_t v89 = (int16x2_t)(((uint32_t)v[8] & 0xFFFFu) | ((uint32_t)v[9] << 16));
                    const int16x2_t vab = (int16x2_t)(((uint32_t)v[10] & 0xFFFFu) | ((uint32_t)v[11] << 16));
                    for (oc = 0; oc < out.c; oc++, w += MCU_BINARY_SMALL_PATCH) {
                        int32_t acc = p->bias[oc];
                        acc = __smlad(v01, (int16x2_t)mcu_ld_s16x2(w), acc);
                        acc = __smlad(v23, (int16x2_t)mcu_ld_s16x2(w + 2), acc);
                        acc = __smlad(v45, (int16x2_t)mcu_ld_s16x2(w + 4), acc);
                        acc = __smlad(v67, (int16x2_t)mcu_ld_s16x2(w + 6), acc);
                        acc = __smlad(v89, (int16x2_t)mcu_ld_s16x2(w + 8), acc);
                        acc = __smlad(vab, (int16x2_t)mcu_ld_s16x2(w + 10), acc);
                        word |= (uint32_t)(acc < p->thresholds[oc]) << (oc & 31);
                        if ((oc & 31) == 31 || oc == out.c - 1) {
                            o[oc >> 5] = word;
                            word = 0u;
                        }
                    }
                }
#else
                for (oc = 0; oc < out.c; oc++, w += MCU_BINARY_SMALL_PATCH) {
                    int32_t acc = p->bias[oc], i;
                    for (i = 0; i < MCU_BINARY_SMALL_PATCH; i++) {
                        acc += v[i] * (int32_t)w[i];
                    }
                    word |= (uint32_t)(acc < p->thresholds[oc]) << (oc & 31);
                    if ((oc & 31) == 31 || oc == out.c - 1) {
                        o[oc >> 5] = word;
                        word = 0u;
                    }
                }
#endif
            }
        }
    }
}

MCU_BINARY_OPT mcu_status mcu_binary_pack_conv2d_s8(const mcu_binary_pack_conv2d_params *params,
                                                    const int8_t *input, uint32_t *output)
{
    int8_t patch[MCU_BINARY_MAX_PATCH];
    int32_t b, oy, ox, oc, j;

    if (params == NULL || input == NULL || output == NULL || (params->weights == NULL && params->weights16 == NULL) ||
        params->bias == NULL ||
        params->thresholds == NULL || params->stride_h <= 0 || params->stride_w <= 0 ||
        params->filter_h * params->filter_w * params->input.c > MCU_BINARY_MAX_PATCH) {
        return MCU_ERROR_ARGUMENT;
    }
    if (params->weights16 != NULL && params->filter_h * params->filter_w * params->input.c <= MCU_BINARY_SMALL_PATCH) {
        pack_conv_small(params, input, output);
        return MCU_OK;
    }
    if (params->weights == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_dims in = params->input;
        const mcu_dims out = params->output;
        const int32_t out_words = mcu_packed_words(out.c);
        const int32_t k = params->filter_h * params->filter_w * in.c;
        for (b = 0; b < out.n; b++) {
            const int8_t *in_b = input + (size_t)b * in.h * in.w * in.c;
            for (oy = 0; oy < out.h; oy++) {
                for (ox = 0; ox < out.w; ox++) {
                    uint32_t *o = output + (((size_t)b * out.h + oy) * out.w + ox) * out_words;
                    uint32_t word = 0u;
                    gather_patch(params, in_b, oy, ox, patch);
                    for (oc = 0; oc < out.c;) {
                        int32_t acc[4];
                        const int32_t n = out.c - oc < 4 ? out.c - oc : 4;
                        for (j = 0; j < n; j++) {
                            acc[j] = params->bias[oc + j];
                        }
                        if (n == 4) {
                            mcu_dot4_s8(patch, params->weights + (size_t)oc * k, k, k, params->input_offset, acc);
                        } else {
                            for (j = 0; j < n; j++) {
                                acc[j] = mcu_dot_s8(patch, params->weights + (size_t)(oc + j) * k, k,
                                                    params->input_offset, acc[j]);
                            }
                        }
                        for (j = 0; j < n; j++, oc++) {
                            word |= (uint32_t)(acc[j] < params->thresholds[oc]) << (oc & 31);
                            if ((oc & 31) == 31 || oc == out.c - 1) {
                                o[oc >> 5] = word;
                                word = 0u;
                            }
                        }
                    }
                }
            }
        }
    }
    return MCU_OK;
}
