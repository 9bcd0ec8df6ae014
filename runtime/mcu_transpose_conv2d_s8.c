/*
 * mcu_transpose_conv2d_s8.c - TRANSPOSE_CONV, int8 activations, int8 weights per output channel.
 *
 * Follows reference_integer_ops::TransposeConv for int8 (kernels/internal/reference/integer_ops/transpose_conv.h).
 * TFLM scatters every input pixel into an int32 scratch buffer of the output's size; this kernel computes each
 * output directly from the taps that reach it (mcu_conv.h), summing (x + input_offset) * w in int32
 * (mcu_dot_s8 of mcu_dot_s8.h: the same int32 sum in another order), then adds the bias and requantizes per
 * channel with the output zero point and clamp (mcu_requant_s8). No scratch memory. Portable C for every core,
 * SMLAD where the core has DSP.
 */
#include "mcu_conv.h"
#include "mcu_dot_s8.h"
#include "mcu_kernels.h"
#include "mcu_requant.h"

/* One output pixel: taps (ky0 + i * stride_h, input row iy0 - i), i < ny, likewise along x. */
static inline void mcu_transpose_conv2d_s8_pixel(const mcu_conv_params *p, const int8_t *image, int32_t ky0,
                                                 int32_t iy0, int32_t ny, int32_t kx0, int32_t ix0, int32_t nx,
                                                 int8_t *out)
{
    const int32_t iw = p->input.w, cin = p->input.c, kw = p->filter.w, cout = p->output.c;
    const size_t filter_size = (size_t)p->filter.h * kw * cin;
    int32_t oc, ty, tx;
    for (oc = 0; oc < cout; oc++) {
        int32_t acc = p->bias32 != NULL ? p->bias32[oc] : 0;
        for (ty = 0; ty < ny; ty++) {
            const int32_t ky = ky0 + ty * p->stride_h, iy = iy0 - ty;
            for (tx = 0; tx < nx; tx++) {
                const int32_t kx = kx0 + tx * p->stride_w, ix = ix0 - tx;
                acc = mcu_dot_s8(image + ((size_t)iy * iw + ix) * cin,
                                 p->weights + (size_t)oc * filter_size + ((size_t)ky * kw + kx) * cin, cin,
                                 p->input_offset, acc);
            }
        }
        out[oc] = (int8_t)mcu_requant_s8(acc, p->multiplier[oc], p->shift[oc], p->output_offset, p->act.min,
                                         p->act.max);
    }
}

MCU_KERNEL_OPT mcu_status mcu_transpose_conv2d_s8(const mcu_conv_params *params, const int8_t *input, int8_t *output)
{
    const mcu_conv_params *p = params;
    int32_t b, oy, ox;
    if (!mcu_conv_params_ok(p, input, output)) {
        return MCU_ERROR_ARGUMENT;
    }
    for (b = 0; b < p->output.n; b++) {
        const int8_t *image = input + (size_t)b * p->input.h * p->input.w * p->input.c;
        for (oy = 0; oy < p->output.h; oy++) {
            int32_t ky0, iy0, ny;
            mcu_transpose_taps(oy, p->pad_top, p->stride_h, p->filter.h, p->input.h, &ky0, &iy0, &ny);
            for (ox = 0; ox < p->output.w; ox++) {
                int32_t kx0, ix0, nx;
                mcu_transpose_taps(ox, p->pad_left, p->stride_w, p->filter.w, p->input.w, &kx0, &ix0, &nx);
                mcu_transpose_conv2d_s8_pixel(p, image, ky0, iy0, ny, kx0, ix0, nx,
                                              output + (((size_t)b * p->output.h + oy) * p->output.w + ox)
                                                           * p->output.c);
            }
        }
    }
    return MCU_OK;
}
