/*
 * mcu_transpose_conv2d_s8.c - TRANSPOSE_CONV, int8 activations, int8 weights per output channel.
 *
 * Follows reference_integer_ops::TransposeConv for int8 (kernels/internal/reference/integer_ops/transpose_conv.h).
 * TFLM scatters every input pixel into a scratch buffer of the output's size; this kernel computes each output
 * directly from the taps that reach it (mcu_transpose_conv.h), with an int32 accumulator of (x + input_offset) * w
 * (wrapping as TFLM's int32 scratch does: the sum is the same in any order modulo 2^32), then the bias and the
 * per-channel requantization and clamp. No scratch memory. Portable C for every core.
 */
#include "mcu_kernels.h"
#include "mcu_requant.h"
#include "mcu_transpose_conv.h"

mcu_status mcu_transpose_conv2d_s8(const mcu_conv_params *params, const int8_t *input, int8_t *output)
{
    if (params == NULL || input == NULL || output == NULL || params->weights == NULL || params->multiplier == NULL
        || params->shift == NULL || params->filter.c != params->input.c || params->filter.n != params->output.c
        || params->pad_top < 0 || params->pad_left < 0) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_conv_params *p = params;
        const int32_t ih = p->input.h, iw = p->input.w, cin = p->input.c;
        const int32_t kh = p->filter.h, kw = p->filter.w, cout = p->output.c;
        int32_t b, oy, ox, oc, ty, tx, c;
        for (b = 0; b < p->output.n; b++) {
            for (oy = 0; oy < p->output.h; oy++) {
                int32_t ky0, iy0, ny;
                mcu_transpose_taps(oy, p->pad_top, p->stride_h, kh, ih, &ky0, &iy0, &ny);
                for (ox = 0; ox < p->output.w; ox++) {
                    int32_t kx0, ix0, nx;
                    mcu_transpose_taps(ox, p->pad_left, p->stride_w, kw, iw, &kx0, &ix0, &nx);
                    for (oc = 0; oc < cout; oc++) {
                        int32_t acc = 0;
                        for (ty = 0; ty < ny; ty++) {
                            const int32_t ky = ky0 + ty * p->stride_h, iy = iy0 - ty;
                            for (tx = 0; tx < nx; tx++) {
                                const int32_t kx = kx0 + tx * p->stride_w, ix = ix0 - tx;
                                const int8_t *x = input + (((size_t)b * ih + iy) * iw + ix) * cin;
                                const int8_t *w = p->weights + (((size_t)oc * kh + ky) * kw + kx) * cin;
                                for (c = 0; c < cin; c++) {
                                    acc = mcu_fp_add(acc, ((int32_t)x[c] + p->input_offset) * w[c]);
                                }
                            }
                        }
                        acc = mcu_fp_add(acc, p->bias32 != NULL ? p->bias32[oc] : 0);
                        output[(((size_t)b * p->output.h + oy) * p->output.w + ox) * cout + oc] = (int8_t)mcu_requant_s8(
                            acc, p->multiplier[oc], p->shift[oc], p->output_offset, p->act.min, p->act.max);
                    }
                }
            }
        }
    }
    return MCU_OK;
}
