/*
 * mcu_transpose_conv2d_s16.c - TRANSPOSE_CONV, int16 activations (zero point 0), int8 weights per output channel.
 *
 * Follows the int16 template of reference_integer_ops::TransposeConv (kernels/internal/reference/integer_ops/
 * transpose_conv.h) with the int64 scratch and bias of TFLite Micro's transpose_conv.cc (an int16 bias is
 * widened at compile time, as TFLM does). TFLM scatters every input pixel into a scratch buffer of the
 * output's size; this kernel computes each output directly from the taps that reach it (mcu_conv.h), summing
 * exactly (mcu_dot2_s16_s8 of mcu_dot_s8.h, TFLM's int64 sums in another order), then adds the bias and
 * requantizes per channel (mcu_requant_s16). Output channels go in blocks whose accumulators live on the
 * stack; no scratch memory. Portable C for every core, SMLAD where the core has DSP.
 */
#include "mcu_conv.h"
#include "mcu_dot_s8.h"
#include "mcu_kernels.h"
#include "mcu_requant.h"

/* One output pixel of a channel block: taps (ky0 + i * stride_h, input row iy0 - i), i < ny, likewise along x. */
static inline void mcu_transpose_conv2d_s16_pixel(const mcu_conv_params *p, const int16_t *image, int32_t ky0,
                                                  int32_t iy0, int32_t ny, int32_t kx0, int32_t ix0, int32_t nx,
                                                  int16_t *out)
{
    const int32_t iw = p->input.w, cin = p->input.c, kw = p->filter.w, cout = p->output.c;
    const size_t filter_size = (size_t)p->filter.h * kw * cin;
    int64_t acc[MCU_CONV_CHANNEL_BLOCK];
    int32_t oc, ty, tx;
    for (oc = 0; oc < cout; oc++) {
        acc[oc] = 0;
    }
    for (ty = 0; ty < ny; ty++) {
        const int32_t ky = ky0 + ty * p->stride_h, iy = iy0 - ty;
        for (tx = 0; tx < nx; tx++) {
            const int32_t kx = kx0 + tx * p->stride_w, ix = ix0 - tx;
            const int16_t *x = image + ((size_t)iy * iw + ix) * cin;
            const int8_t *w = p->weights + ((size_t)ky * kw + kx) * cin;
            for (oc = 0; oc + 1 < cout; oc += 2, w += 2 * filter_size) {
                mcu_dot2_s16_s8(x, w, w + filter_size, cin, &acc[oc], &acc[oc + 1]);
            }
            if (oc < cout) {
                acc[oc] += mcu_dot_s16_s8(x, w, cin);
            }
        }
    }
    for (oc = 0; oc < cout; oc++) {
        out[oc] = mcu_requant_s16(acc[oc], NULL, p->bias64, oc, p->multiplier[oc], p->shift[oc], p->act.min,
                                  p->act.max);
    }
}

MCU_KERNEL_OPT mcu_status mcu_transpose_conv2d_s16(const mcu_conv_params *params, const int16_t *input,
                                                   int16_t *output)
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
                int32_t ky0, iy0, ny;
                mcu_transpose_taps(oy, p->pad_top, p->stride_h, p->filter.h, p->input.h, &ky0, &iy0, &ny);
                for (ox = 0; ox < p->output.w; ox++) {
                    int32_t kx0, ix0, nx;
                    mcu_transpose_taps(ox, p->pad_left, p->stride_w, p->filter.w, p->input.w, &kx0, &ix0, &nx);
                    mcu_transpose_conv2d_s16_pixel(
                        &block, image, ky0, iy0, ny, kx0, ix0, nx,
                        output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * p->output.c + c0);
                }
            }
        }
    }
    return MCU_OK;
}
