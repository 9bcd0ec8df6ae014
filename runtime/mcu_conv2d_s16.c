/*
 * mcu_conv2d_s16.c - CONV_2D in TFLite's 16x8 scheme: int16 input and output (zero point 0), int8 weights per
 * output channel, int64 (or int32) bias.
 *
 * Follows reference_integer_ops::ConvPerChannel for int16 data (kernels/internal/reference/integer_ops/conv.h)
 * as TFLite Micro's conv.cc calls it: taps outside the input are skipped (zero padding), products summed in an
 * int64 accumulator, requantized per output channel by mcu_requant_s16 (mcu_requant.h: the int32 path when the
 * bias is int32, as TFLM does). The int64 sum equals TFLM's int32 one modulo 2^32, so the int32 path wraps it.
 * Portable C for every core, no scratch memory.
 */
#include "mcu_kernels.h"
#include "mcu_requant.h"

mcu_status mcu_conv2d_s16(const mcu_conv_params *params, const int16_t *input, int16_t *output)
{
    if (params == NULL || input == NULL || output == NULL || params->weights == NULL || params->multiplier == NULL
        || params->shift == NULL || params->filter.c != params->input.c || params->filter.n != params->output.c) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_conv_params *p = params;
        const int32_t ih = p->input.h, iw = p->input.w, cin = p->input.c;
        const int32_t kh = p->filter.h, kw = p->filter.w, cout = p->output.c;
        const size_t filter_size = (size_t)kh * kw * cin;
        int32_t b, oy, ox, oc, ky, kx, c;
        for (b = 0; b < p->output.n; b++) {
            for (oy = 0; oy < p->output.h; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                for (ox = 0; ox < p->output.w; ox++) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    for (oc = 0; oc < cout; oc++) {
                        const int8_t *w_oc = p->weights + (size_t)oc * filter_size;
                        int64_t acc = 0;
                        for (ky = 0; ky < kh; ky++) {
                            const int32_t iy = y0 + ky * p->dilation_h;
                            if (iy < 0 || iy >= ih) {
                                continue;
                            }
                            for (kx = 0; kx < kw; kx++) {
                                const int32_t ix = x0 + kx * p->dilation_w;
                                const int16_t *x;
                                const int8_t *w;
                                int32_t row = 0;
                                if (ix < 0 || ix >= iw) {
                                    continue;
                                }
                                x = input + (((size_t)b * ih + iy) * iw + ix) * cin;
                                w = w_oc + ((size_t)ky * kw + kx) * cin;
                                /* |x * w| <= 2^22: 256 products fit an int32 before they go into acc */
                                for (c = 0; c < cin; c++) {
                                    row += (int32_t)x[c] * w[c];
                                    if ((c & 255) == 255) {
                                        acc += row;
                                        row = 0;
                                    }
                                }
                                acc += row;
                            }
                        }
                        output[(((size_t)b * p->output.h + oy) * p->output.w + ox) * cout + oc] =
                            mcu_requant_s16(acc, p->bias32, p->bias64, oc, p->multiplier[oc], p->shift[oc],
                                            p->act.min, p->act.max);
                    }
                }
            }
        }
    }
    return MCU_OK;
}
