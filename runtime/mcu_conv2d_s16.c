/*
 * mcu_conv2d_s16.c - CONV_2D in TFLite's 16x8 scheme: int16 input and output (zero point 0), int8 weights per
 * output channel, int64 (or int32) bias.
 *
 * Follows reference_integer_ops::ConvPerChannel for int16 data (kernels/internal/reference/integer_ops/conv.h)
 * as TFLite Micro's conv.cc calls it: taps outside the input are skipped (zero padding), products summed
 * exactly (mcu_dot_s16_s8 / mcu_dot2_s16_s8 of mcu_dot_s8.h, two output channels at a time), requantized per
 * output channel by mcu_requant_s16 (mcu_requant.h: the int32 path when the bias is int32, as TFLM does; the
 * exact sum equals TFLM's int32 one modulo 2^32, and that path wraps it). Output channels go in blocks
 * (mcu_conv.h) whose accumulators live on the stack. Portable C for every core, SMLAD where the core has DSP.
 */
#include "mcu_conv.h"
#include "mcu_dot_s8.h"
#include "mcu_kernels.h"
#include "mcu_requant.h"

/* One output pixel of a channel block, its window starting at input (y0, x0) of `image`. */
static inline void mcu_conv2d_s16_pixel(const mcu_conv_params *p, const int16_t *image, int32_t y0, int32_t x0,
                                        int16_t *out)
{
    const int32_t ih = p->input.h, iw = p->input.w, cin = p->input.c;
    const int32_t kh = p->filter.h, kw = p->filter.w, cout = p->output.c;
    const size_t filter_size = (size_t)kh * kw * cin;
    int64_t acc[MCU_CONV_CHANNEL_BLOCK];
    int32_t oc, ky, kx;
    for (oc = 0; oc < cout; oc++) {
        acc[oc] = 0;
    }
    for (ky = 0; ky < kh; ky++) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= ih) {
            continue;
        }
        for (kx = 0; kx < kw; kx++) {
            const int32_t ix = x0 + kx * p->dilation_w;
            const int16_t *x;
            const int8_t *w;
            if (ix < 0 || ix >= iw) {
                continue;
            }
            x = image + ((size_t)iy * iw + ix) * cin;
            w = p->weights + ((size_t)ky * kw + kx) * cin;
            for (oc = 0; oc + 1 < cout; oc += 2, w += 2 * filter_size) {
                mcu_dot2_s16_s8(x, w, w + filter_size, cin, &acc[oc], &acc[oc + 1]);
            }
            if (oc < cout) {
                acc[oc] += mcu_dot_s16_s8(x, w, cin);
            }
        }
    }
    for (oc = 0; oc < cout; oc++) {
        out[oc] = mcu_requant_s16(acc[oc], p->bias32, p->bias64, oc, p->multiplier[oc], p->shift[oc], p->act.min,
                                  p->act.max);
    }
}

MCU_KERNEL_OPT mcu_status mcu_conv2d_s16(const mcu_conv_params *params, const int16_t *input, int16_t *output)
{
    const mcu_conv_params *p = params;
    int32_t b, oy, ox, c0;
    if (!mcu_conv_params_ok(p, input, output)) {
        return MCU_ERROR_ARGUMENT;
    }
    for (c0 = 0; c0 < p->output.c; c0 += MCU_CONV_CHANNEL_BLOCK) {
        mcu_conv_params block;
        mcu_conv_channel_block(p, c0, &block);
        for (b = 0; b < p->output.n; b++) {
            const int16_t *image = input + (size_t)b * p->input.h * p->input.w * p->input.c;
            for (oy = 0; oy < p->output.h; oy++) {
                for (ox = 0; ox < p->output.w; ox++) {
                    int16_t *out = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * p->output.c + c0;
                    mcu_conv2d_s16_pixel(&block, image, oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left,
                                         out);
                }
            }
        }
    }
    return MCU_OK;
}
