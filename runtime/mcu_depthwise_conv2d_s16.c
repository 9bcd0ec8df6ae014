/*
 * mcu_depthwise_conv2d_s16.c - DEPTHWISE_CONV_2D in TFLite's 16x8 scheme: int16 input and output (zero point 0),
 * int8 weights per output channel, int64 bias (TFLite Micro reads no other bias type for it).
 *
 * Follows reference_integer_ops::DepthwiseConvPerChannel for int16 data (kernels/internal/reference/integer_ops/
 * depthwise_conv.h) as TFLite Micro's depthwise_conv.cc calls it: output channel c * m + k reads input channel
 * c (m = output channels / input channels, the depth multiplier), taps outside the input are skipped (zero
 * padding), products summed in an int64 accumulator, the bias added, requantized per output channel by
 * mcu_requant_s16 (mcu_requant.h). Weights are (1, kh, kw, output channels); `filter.n` is 1.
 * Portable C for every core, no scratch memory.
 */
#include "mcu_kernels.h"
#include "mcu_requant.h"

mcu_status mcu_depthwise_conv2d_s16(const mcu_conv_params *params, const int16_t *input, int16_t *output)
{
    if (params == NULL || input == NULL || output == NULL || params->weights == NULL || params->multiplier == NULL
        || params->shift == NULL || params->bias32 != NULL || params->input.c <= 0
        || params->filter.c != params->output.c || params->output.c % params->input.c != 0) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const mcu_conv_params *p = params;
        const int32_t ih = p->input.h, iw = p->input.w, cin = p->input.c;
        const int32_t kh = p->filter.h, kw = p->filter.w, cout = p->output.c;
        const int32_t mult = cout / cin;
        int32_t b, oy, ox, oc, ky, kx;
        for (b = 0; b < p->output.n; b++) {
            for (oy = 0; oy < p->output.h; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                for (ox = 0; ox < p->output.w; ox++) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    int16_t *out = output + (((size_t)b * p->output.h + oy) * p->output.w + ox) * cout;
                    for (oc = 0; oc < cout; oc++) {
                        const int32_t ic = oc / mult;
                        int64_t acc = 0;
                        for (ky = 0; ky < kh; ky++) {
                            const int32_t iy = y0 + ky * p->dilation_h;
                            if (iy < 0 || iy >= ih) {
                                continue;
                            }
                            for (kx = 0; kx < kw; kx++) {
                                const int32_t ix = x0 + kx * p->dilation_w;
                                if (ix < 0 || ix >= iw) {
                                    continue;
                                }
                                acc += (int32_t)input[(((size_t)b * ih + iy) * iw + ix) * cin + ic]
                                       * p->weights[((size_t)ky * kw + kx) * cout + oc];
                            }
                        }
                        out[oc] = mcu_requant_s16(acc, NULL, p->bias64, oc, p->multiplier[oc], p->shift[oc],
                                                  p->act.min, p->act.max);
                    }
                }
            }
        }
    }
    return MCU_OK;
}
